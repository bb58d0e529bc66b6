"""Open a local HTML file in headless Chromium and report what the page did.

Test helper, not a test module. Chromium is driven over the DevTools protocol on
--remote-debugging-pipe (stdlib only) rather than by scraping
`--enable-logging=stderr`: those CONSOLE lines are all logged at INFO, so console.error
cannot be told from console.log, and failed resource loads do not appear at all.
"""
import base64
import fcntl
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # Containers often have a tiny /dev/shm; Debian's wrapper means to add this but its
    # size check can break (findmnt printing two lines).
    "--disable-dev-shm-usage",
    "--disable-extensions",
)


@dataclass
class Rendered:
    dom: str  # document.documentElement.outerHTML once the virtual-time budget ran out
    console_errors: list[str] = field(default_factory=list)
    stderr: str = ""  # browser output, for diagnosis only: full of harmless ERROR lines (dbus)
    value: object = None  # what `evaluate` returned (JSON-like)


def chromium_path() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    """The browser's path; skip without one locally, fail without one in CI."""
    path = chromium_path()
    if path is None:
        reason = f"no Chromium found (looked for {', '.join(CANDIDATES)})"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; CI must install it (see .ci/run)", pytrace=False)
        pytest.skip(reason)
    return path


def render(html_path: Path, wait_ms: int = 15000, timeout_s: float = 90.0, evaluate: str | None = None,
           screenshot: Path | None = None, width: int = 1400) -> Rendered:
    """Load `html_path` in a `width`-pixel window, let its scripts run for `wait_ms` of virtual
    time, return the DOM, the value of the JavaScript expression `evaluate` (JSON-like), and
    write a full-page PNG to `screenshot`.

    Virtual time stands still while files load and skips ahead when the page is idle,
    so a large budget rarely costs its full length in wall-clock time.
    """
    if wait_ms < 1:
        raise ValueError("wait_ms must be >= 1 (a zero budget never expires)")
    exe = chromium_path()
    if exe is None:
        raise RuntimeError("no Chromium found")
    url = Path(html_path).resolve().as_uri()
    profile = tempfile.mkdtemp(prefix="gatesim-chromium-")
    try:
        with open(os.path.join(profile, "stderr.log"), "w+b") as err:
            dom, errors, value = _drive(exe, profile, url, wait_ms, time.monotonic() + timeout_s, err,
                                        evaluate, screenshot, width)
            err.seek(0)
            return Rendered(dom, errors, err.read().decode(errors="replace"), value)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _drive(exe, profile, url, wait_ms, deadline, err, evaluate, screenshot, width) -> tuple[str, list[str], object]:
    # The browser reads commands on fd 3 and writes replies on fd 4.
    cmd_r, cmd_w = os.pipe()
    out_r, out_w = os.pipe()

    def child_fds():
        # Go via fds >= 10 first so neither dup2 can clobber the other pipe end.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (cmd_r, out_w)]
        os.dup2(high[0], 3)
        os.dup2(high[1], 4)
        for fd in high:
            os.close(fd)

    proc = subprocess.Popen(
        [exe, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
        stdin=subprocess.DEVNULL, stdout=err, stderr=err,
        close_fds=False, preexec_fn=child_fds,
        start_new_session=True,  # its own process group, so helpers die with it
    )
    os.close(cmd_r)
    os.close(out_w)
    cdp = _Cdp(proc, cmd_w, out_r, deadline)
    try:
        target = cdp.call("Target.createTarget", url="about:blank")["targetId"]
        cdp.session = cdp.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            cdp.call(f"{domain}.enable")
        cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=False)
        # Hold virtual time until the navigation has started, as Chromium's own tests do.
        cdp.call("Emulation.setVirtualTimePolicy", policy="pause")
        nav = cdp.call("Page.navigate", url=url)
        if nav.get("errorText"):
            raise RuntimeError(f"could not open {url}: {nav['errorText']}")
        cdp.call("Emulation.setVirtualTimePolicy", policy="pauseIfNetworkFetchesPending",
                 budget=wait_ms)
        cdp.wait_for({"Page.loadEventFired", "Emulation.virtualTimeBudgetExpired"})
        dom = cdp.call("Runtime.evaluate", expression="document.documentElement.outerHTML",
                       returnByValue=True)["result"]["value"]
        value = None
        if evaluate:
            reply = cdp.call("Runtime.evaluate", expression=evaluate, returnByValue=True)
            if "exceptionDetails" in reply:
                raise RuntimeError(f"evaluate failed: {reply['exceptionDetails']}")
            value = reply["result"].get("value")
        if screenshot:
            size = cdp.call("Page.getLayoutMetrics")["cssContentSize"]
            shot = cdp.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                            clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
            Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
        cdp.session = None
        try:
            cdp.call("Browser.close")
        except RuntimeError:
            pass  # the pipe may close before the reply arrives
        return dom, cdp.errors, value
    finally:
        os.close(cmd_w)
        try:
            proc.wait(timeout=max(1.0, min(10.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            pass
        try:  # also takes down renderers left behind by a crash or hang
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        cdp.reader.join(timeout=5)
        os.close(out_r)


class _Cdp:
    """Minimal DevTools-protocol client: NUL-separated JSON messages over two pipes."""

    def __init__(self, proc, wfd, rfd, deadline):
        self.proc, self.wfd, self.deadline = proc, wfd, deadline
        self.session: str | None = None
        self.next_id = 0
        self.errors: list[str] = []
        self.seen: set[str] = set()
        self.inbox: queue.Queue = queue.Queue()
        self.reader = threading.Thread(target=self._read, args=(rfd,), daemon=True)
        self.reader.start()

    def _read(self, rfd):
        buf = b""
        while chunk := os.read(rfd, 1 << 16):
            *messages, buf = (buf + chunk).split(b"\0")
            for m in messages:
                self.inbox.put(json.loads(m))
        self.inbox.put(None)  # EOF: the browser has gone

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if self.session:
            msg["sessionId"] = self.session
        os.write(self.wfd, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._next(f"reply to {method}")
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def wait_for(self, events: set[str]) -> None:
        while not events <= self.seen:
            self._next(f"events {sorted(events - self.seen)}")

    def _next(self, waiting_for: str) -> dict:
        left = self.deadline - time.monotonic()
        try:
            msg = self.inbox.get(timeout=max(left, 0))
        except queue.Empty:
            raise TimeoutError(f"Chromium timed out waiting for {waiting_for}") from None
        if msg is None:
            raise RuntimeError(f"Chromium exited (rc={self.proc.poll()}) "
                               f"while waiting for {waiting_for}")
        if "method" in msg:
            self.seen.add(msg["method"])
            if (error := _error_text(msg["method"], msg.get("params", {}))) is not None:
                self.errors.append(error)
        return msg


def _error_text(method: str, p: dict) -> str | None:
    """One line per error-level event from the page, None for anything else."""
    if method == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
        text = " ".join(_value(a) for a in p.get("args", []))
        frames = p.get("stackTrace", {}).get("callFrames", [])
        where = f" ({frames[0]['url']}:{frames[0]['lineNumber'] + 1})" if frames else ""
        return f"console.{p['type']}: {text}{where}"
    if method == "Runtime.exceptionThrown":
        d = p["exceptionDetails"]  # text is e.g. "Uncaught"; the exception carries its stack
        if "exception" in d:
            return f"{d['text']} {_value(d['exception'])}"
        return f"{d['text']} ({d.get('url', '?')}:{d['lineNumber'] + 1})"
    if method == "Log.entryAdded" and p["entry"]["level"] == "error":
        e = p["entry"]
        return f"{e['source']}: {e['text']}" + (f" ({e['url']})" if e.get("url") else "")
    return None


def _value(obj: dict) -> str:
    """Readable text for a DevTools RemoteObject."""
    if "value" in obj:
        v = obj["value"]
        return v if isinstance(v, str) else json.dumps(v)
    return obj.get("unserializableValue") or obj.get("description") or obj.get("type", "?")
