"""User-facing errors and warnings: one line, printed by the CLI without a traceback."""

from __future__ import annotations

import signal


class AfvsrError(Exception):
    """A bad input or environment problem the user can fix; the message is one line."""


class RenamedWarning(FutureWarning):
    """An old name read as its current one (a config's ``[model] fusion``). The ``afvsr``
    command prints it as one line, ``afvsr: warning: ...``; Python code sees a FutureWarning."""


class Interrupted(KeyboardInterrupt):
    """A termination signal (SIGTERM, SIGHUP) received: handled exactly like Ctrl-C, so every
    temporary file is removed on the way out; the CLI exits with 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_status(exc: KeyboardInterrupt) -> int:
    """130 for Ctrl-C (SIGINT), 128 + N for signal N (143 for SIGTERM)."""
    return 128 + getattr(exc, "signum", signal.SIGINT)


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` for ``afvsr: error: ...``: one line, naming the file for an
    OSError from the file system (``/out/x.mp4: No space left on device``)."""
    if isinstance(exc, OSError) and exc.strerror:
        names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
        text = f"{' -> '.join(names)}: {exc.strerror}" if names else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return text.replace("\r", " ").replace("\n", " ")  # one line whatever the message held
