"""`python cli.py ...` from a checkout: the same command line as `gatesim ...`."""
from gatesim.cli import app

if __name__ == "__main__":
    app()
