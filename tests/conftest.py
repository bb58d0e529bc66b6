import pytest


@pytest.fixture(autouse=True)
def _width_from_the_command_not_the_shell(monkeypatch):
    """Redirected output is 200 columns wide unless COLUMNS says otherwise; tests see the same
    whatever the shell running them exports (a test that needs a width sets it itself)."""
    monkeypatch.delenv("COLUMNS", raising=False)
