"""The library example (docs/library.md, linked from the README) runs as written, from the
repository root, as a user would. The README's and docs' command examples are run by
tests/test_docs.py."""
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_library_example_runs(monkeypatch):
    text = (ROOT / "docs" / "library.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(ROOT)
    scope: dict = {}
    exec(compile(code, "docs/library.md", "exec"), scope)
    assert scope["run"].brevitas["bit_exact"] is True
    assert scope["trained"]["agree"] is True
    assert scope["result"].points > 0 and os.path.exists(scope["result"].files["html"])
