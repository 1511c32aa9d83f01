"""The `afvsr` command: one subcommand per module, listed explicitly below.

Each command module provides ``add_arguments(parser)`` and ``run(args) -> int``. Bad input raises
``AfvsrError``/``ValueError``/``OSError`` (any file-system error); here it becomes one line,
``afvsr: error: ...``, on stderr and exit 2, as do command-line mistakes. SIGTERM is handled like
Ctrl-C (temporary files removed, nothing half-written left), exit 143 (130 for Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import NoReturn

from afvsr.errors import AfvsrError, Interrupted, exit_status, one_line

# subcommand -> (module, one-line help). Modules are imported only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("afvsr.demo", "make a clip from a bundled photo, degrade it, upscale it, compare"),
    "upscale": ("afvsr.video.cli", "upscale a video file or a folder of frames"),
    "train": ("afvsr.train.cli", "train a model from a config file"),
    "flow-eval": ("afvsr.flow.cli", "evaluate a SPyNet: EPE on synthetic pairs, warp PSNR"),
    "eval": ("afvsr.evaluation.cli", "evaluate a model on a dataset (PSNR/SSIM)"),
    "table": ("afvsr.evaluation.table", "print and write the comparison table from results"),
    "figures": ("afvsr.evaluation.figures", "attention-map, comparison and training-curve figures"),
    "data": ("afvsr.data.cli", "download and prepare datasets (REDS)"),
    "export": ("afvsr.export", "export a model to ONNX"),
    "convert": ("afvsr.convert", "convert model files between afvsr and BasicSR/mmagic"),
}


class Parser(argparse.ArgumentParser):
    """argparse, with its errors in the one-line form of every other error (exit 2)."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(
            f"afvsr: error: {one_line(ValueError(message))} (see {self.prog} --help)\n"
        )
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="afvsr",
        description="Video super-resolution with attention-based fusion of frame-rate groups.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=module.__doc__)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


@contextlib.contextmanager
def _terminate_like_ctrl_c() -> Iterator[None]:
    """While the command runs, SIGTERM raises :class:`Interrupted` (a KeyboardInterrupt)."""

    def handler(signum: int, frame) -> None:
        raise Interrupted(signum)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Build only the parser of the command asked for, so one command's imports never slow another.
    try:
        if argv and argv[0] in COMMANDS:
            module = importlib.import_module(COMMANDS[argv[0]][0])
            parser = Parser(prog=f"afvsr {argv[0]}", description=module.__doc__)
            module.add_arguments(parser)
            args = parser.parse_args(argv[1:])
            run = module.run
        else:
            parser = build_parser()
            args = parser.parse_args(argv)
            if args.command is None:
                parser.print_help()
                return 2
            run = args._run
    except SystemExit as exc:  # --help (0) or a command-line mistake (2, one line printed)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        with _terminate_like_ctrl_c():
            return int(run(args) or 0)
    except (AfvsrError, ValueError, OSError) as exc:
        print(f"afvsr: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        name = exc.args[0] if isinstance(exc, Interrupted) else "Ctrl-C (SIGINT)"
        print(f"afvsr: error: interrupted by {name}", file=sys.stderr)
        return exit_status(exc)
