"""`python -m gatesim ...`: the same command line as `gatesim ...`."""
from gatesim.cli import app

app()
