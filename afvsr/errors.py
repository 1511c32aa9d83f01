"""User-facing errors: one line, printed by the CLI without a traceback."""


class AfvsrError(Exception):
    """A bad input or environment problem the user can fix; the message is one line."""
