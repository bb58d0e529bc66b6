"""The `$ gatesim ...` examples of README.md and docs/*.md: run them, compare, or rewrite their output.

    python tools/update_docs_examples.py            # rewrite the output shown under every example
    python tools/update_docs_examples.py docs/count.md README.md   # only these pages
    python tools/update_docs_examples.py --check    # compare only (what tests/test_docs.py does)

An example is a ```console block: each line that starts with `$ ` is a command (gatesim's), the
lines after it (up to the next `$ ` line or the end of the block) are what it prints, stdout
and stderr together as a terminal shows them, trailing spaces dropped. In the output shown:

- a line that is only `...` matches any number of lines (none included);
- `...` inside a line, with the spaces around it, matches any text within that line (so a
  table cell can keep its alignment: `│        ... │`).

Use `...` for measured figures only (timings, seconds, speeds); a deterministic command's
output is shown whole and compared exactly. Rewriting keeps every `...` where the new output
still fits it (a bare `...` line takes the lines up to the line shown after it, while that one
is still printed), and names the example when one had to go, for a person to check.

A fenced block right after a line `<!-- file: NAME -->` is written to NAME before the page's
examples run (e.g. the sweep file a `gatesim sweep` example reads).

Each page runs in order in one fresh temporary directory: its `file:` blocks written there,
`configs/` a link to the repository's, HOME a temporary directory of its own (nothing is read
from or written to the user's configuration or caches) and COLUMNS=80. Commands run in this
process through typer's CliRunner on `gatesim.cli.app` (one torch import for all of them),
so only `gatesim` commands can be examples: no pipes, no redirection, no other programs;
`NAME=value` words before `gatesim` set the environment of that command (`PYTHONPATH=.` puts
the page's directory on sys.path, for a user's module written by a `file:` block).
A command must exit 0 unless its output shows an `error:` line.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = "80"
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w-]*)\s*$")
FILE_MARK = re.compile(r"^\s*<!--\s*file:\s*(?P<name>[\w./-]+)\s*-->\s*$")
PROMPT = "$ "


def pages() -> list[Path]:
    """Every page whose examples run: the README and docs/*.md."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclass
class Example:
    command: str
    expected: list[str]          # the output lines shown (ellipses included)
    line: int                    # 1-based line of the command in its page
    start: int = 0               # 0-based index of the first output line in the page
    end: int = 0                 # 0-based index after the last output line

    @property
    def where(self) -> str:
        return f"line {self.line}: $ {self.command}"


@dataclass
class Page:
    path: Path
    lines: list[str]
    examples: list[Example] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)


def parse(path: Path) -> Page:
    lines = path.read_text().split("\n")
    page = Page(path, lines)
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent, lang = fence["indent"], fence["lang"]
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        body = [line[len(indent):] if line.startswith(indent) else line.lstrip() for line in lines[i + 1:j]]
        mark = next((FILE_MARK.match(lines[k]) for k in range(i - 1, -1, -1) if lines[k].strip()), None)
        if mark:
            page.files[mark["name"]] = "\n".join(body) + "\n"
        if lang == "console":
            current = None
            for k, text in enumerate(body, start=i + 1):
                if text.startswith(PROMPT):
                    if current:
                        current.end = k
                    command = text[len(PROMPT):].strip()
                    if _split(command)[1][:1] != ["gatesim"]:
                        raise ValueError(f"{path.name}:{k + 1}: only gatesim commands can be examples: {text}")
                    current = Example(command, [], k + 1, start=k + 1)
                    page.examples.append(current)
                elif current is None:
                    raise ValueError(f"{path.name}:{k + 1}: a console block starts with `$ gatesim ...`")
                else:
                    current.expected.append(text)
            if current:
                current.end = j
        elif any(re.match(r"\$ ([A-Z_][A-Z0-9_]*=\S* )*gatesim\b", line.strip()) for line in body):
            raise ValueError(f"{path.name}:{i + 1}: `$ gatesim` in a ```{lang or ''} block: make it a ```console "
                             "example (it runs) or drop the prompt (a command shown, not run)")
        i = j + 1
    return page


def _split(command: str) -> tuple[dict[str, str], list[str]]:
    """`A=1 B=2 gatesim ...` -> ({A: 1, B: 2}, [gatesim, ...])."""
    words = shlex.split(command)
    env = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    return env, words


# ----------------------------------------------------------------------------- matching


def _normal(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return lines


def _line_pattern(line: str) -> str:
    # the spaces around an ellipsis belong to it, so that `│    ... │` in a table matches any cell
    return ".*?".join(re.escape(part) for part in re.split(r" *\.\.\. *", line))


def matches(expected: list[str], actual: list[str]) -> bool:
    parts = []
    for line in _normal("\n".join(expected)):
        parts.append(r"(?:[^\n]*\n)*?" if line.strip() == "..." else _line_pattern(line) + r"\n")
    return re.fullmatch("".join(parts), "".join(line + "\n" for line in actual), re.S) is not None


def merged(expected: list[str], actual: list[str]) -> tuple[list[str], bool]:
    """The output to show now: `actual`, with the `...` of `expected` kept where they still fit.

    The lines shown are aligned with the lines printed (longest common alignment, a line that
    has `...` matching any line its pattern matches); printed lines the alignment does not take
    are shown as printed, except the run right after a bare `...` line when the line shown
    after it follows that run (the `...` takes it). Also returns whether every ellipsis was
    kept where it belongs."""
    shown = _normal("\n".join(expected))
    if matches(shown, actual):
        return shown, True
    n, m = len(shown), len(actual)
    bare = [line.strip() == "..." for line in shown]
    fits = [[not bare[i] and re.fullmatch(_line_pattern(shown[i]), actual[j]) is not None for j in range(m)]
            for i in range(n)]
    # best[i][j]: how many lines of shown[i:] the longest alignment with actual[j:] matches
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            best[i][j] = max(best[i + 1][j], best[i][j + 1], best[i + 1][j + 1] + 1 if fits[i][j] else 0)
    walk, i, j = [], 0, 0  # (what, text, index in shown): "match", "bare", "lost" or "printed"
    while i < n or j < m:
        if i < n and j < m and fits[i][j] and best[i][j] == best[i + 1][j + 1] + 1:
            walk.append(("match", shown[i], i))
            i, j = i + 1, j + 1
        elif i < n and best[i][j] == best[i + 1][j]:
            if bare[i]:
                walk.append(("bare", shown[i], i))
            elif "..." in shown[i]:
                walk.append(("lost", shown[i], i))
            i += 1
        else:
            walk.append(("printed", actual[j], None))
            j += 1
    # a bare `...` takes the printed lines after it when the line shown after it comes right after them
    out, kept, k = [], True, 0
    while k < len(walk):
        what, text, at = walk[k]
        if what == "bare":
            run = k + 1
            while run < len(walk) and walk[run][0] == "printed":
                run += 1
            if run < len(walk) and walk[run][0] == "match" and walk[run][2] == at + 1:
                out.append(text)
                k = run
                continue
            kept = False  # the line it stood before is gone: a person checks what it should take
            out.append(text)
        elif what == "lost":
            kept = False
        else:
            out.append(text)
        k += 1
    return out, kept


# ----------------------------------------------------------------------------- running


class Runner:
    """Runs one page's commands in its own temporary working directory."""

    def __init__(self, page: Page, workdir: Path):
        from typer.testing import CliRunner

        self.page, self.workdir = page, workdir
        home = workdir / ".home"
        home.mkdir(parents=True, exist_ok=True)
        for name, text in page.files.items():
            target = workdir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        if not (workdir / "configs").exists():
            (workdir / "configs").symlink_to(ROOT / "configs", target_is_directory=True)
        self.cli = CliRunner(env={"COLUMNS": COLUMNS, "LINES": "50", "HOME": str(home), "NO_COLOR": "1",
                                  "TERM": "dumb", "XDG_CONFIG_HOME": str(home / ".config"),
                                  "XDG_CACHE_HOME": str(home / ".cache")})

    def run(self, example: Example) -> tuple[list[str], int]:
        from gatesim.cli import app

        env, words = _split(example.command)
        # PYTHONPATH=... (a user's module next to the command) is put on sys.path for the call
        paths = [str(self.workdir / p) for p in env.pop("PYTHONPATH", "").split(os.pathsep) if p]
        previous = Path.cwd()
        os.chdir(self.workdir)
        sys.path[:0] = paths
        try:
            result = self.cli.invoke(app, words[1:], env=env, catch_exceptions=True)
        finally:
            del sys.path[:len(paths)]
            os.chdir(previous)
        output = _normal(result.output)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            import traceback

            output += _normal("".join(traceback.format_exception(result.exception)))
        return output, result.exit_code


def check_page(path: Path, workdir: Path) -> list[str]:
    """Every difference between what the page shows and what its commands print."""
    page = parse(path)
    runner = Runner(page, workdir)
    problems = []
    for example in page.examples:
        actual, code = runner.run(example)
        if not matches(example.expected, actual):
            import difflib

            # shown against what rewriting would show: lines that `...` still matches are no difference
            diff = "\n".join(difflib.unified_diff(_normal("\n".join(example.expected)),
                                                  merged(example.expected, actual)[0], "shown", "printed",
                                                  lineterm=""))
            problems.append(f"{path.relative_to(ROOT)} {example.where}\n{diff}")
        elif code != 0 and not any(line.startswith("error:") for line in actual):
            problems.append(f"{path.relative_to(ROOT)} {example.where}\nexit code {code}:\n" + "\n".join(actual))
    return problems


def update_page(path: Path, workdir: Path) -> tuple[int, list[str]]:
    """Rewrite the output under every example of `path`; returns (examples changed, warnings)."""
    page = parse(path)
    runner = Runner(page, workdir)
    lines = list(page.lines)
    changed, warnings = 0, []
    results = []
    for example in page.examples:  # run in page order: later commands may read earlier ones' files
        results.append(runner.run(example))
    for example, (actual, code) in reversed(list(zip(page.examples, results))):  # bottom up: indices hold
        new, kept = merged(example.expected, actual)
        if code != 0 and not any(line.startswith("error:") for line in actual):
            warnings.append(f"{path.relative_to(ROOT)} {example.where}: exit code {code}")
        if not kept:
            warnings.append(f"{path.relative_to(ROOT)} {example.where}: the output changed where it shows `...`: "
                            "check that every measured figure is still elided")
        indent = re.match(r"\s*", page.lines[example.start - 1])[0]
        new = [indent + line if line else line for line in new]
        if lines[example.start:example.end] != new:
            changed += 1
            lines[example.start:example.end] = new
    if changed:
        path.write_text("\n".join(lines))
    return changed, warnings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="*", type=Path, help="pages to run (default: README.md and docs/*.md)")
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on any difference")
    args = parser.parse_args(argv)
    chosen = [p.resolve() for p in args.pages] or pages()
    failed = 0
    for path in chosen:
        with tempfile.TemporaryDirectory(prefix="gatesim-docs-") as tmp:
            if args.check:
                problems = check_page(path, Path(tmp))
                failed += len(problems)
                for problem in problems:
                    print(problem, file=sys.stderr)
                print(f"{path.relative_to(ROOT)}: {'ok' if not problems else f'{len(problems)} differ'}")
            else:
                changed, warnings = update_page(path, Path(tmp))
                for warning in warnings:
                    print("warning:", warning, file=sys.stderr)
                print(f"{path.relative_to(ROOT)}: {changed} example(s) rewritten")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
