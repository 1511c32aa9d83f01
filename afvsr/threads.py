"""``--threads N``: the CPU threads a command's model runs on (``upscale``, ``eval``, ``demo``).

torch uses one thread per core by default. Its threads meet at the end of every layer, so on a
machine whose cores are busy with other work a thread that is not scheduled holds the others
up: there, fewer threads are faster (measured: ``afvsr demo`` 32 s with 2 threads, 4.6 s with 1,
on a 2-core CPU running two other jobs).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from afvsr.errors import AfvsrError


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """``--threads N`` (default: torch's own choice, one per core)."""
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="CPU threads for the model (default: one per core; where the cores are busy "
        "with other work, fewer are faster)",
    )


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Run the block on ``n`` CPU threads (None: leave torch's setting), then restore it."""
    if n is None:
        yield
        return
    if n < 1:
        raise AfvsrError(f"expected --threads >= 1, got {n}")
    import torch  # here: the commands' parsers load without torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
