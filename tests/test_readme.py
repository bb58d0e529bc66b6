"""The README's library example runs as written (from the repository root, as a user would)."""
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_library_example_runs(monkeypatch):
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Library"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(ROOT)
    scope: dict = {}
    exec(compile(code, "README.md#library", "exec"), scope)
    assert scope["run"].brevitas["bit_exact"] is True
    assert scope["trained"]["agree"] is True
    assert scope["result"].points > 0 and os.path.exists(scope["result"].files["html"])
