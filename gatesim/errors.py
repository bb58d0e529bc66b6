"""The one error type users see: a message that names the value and what is allowed."""


class GatesimError(Exception):
    """Bad input or an unsupported construct; the CLI prints it on one line and exits 2."""
