"""The `afvsr` command: one subcommand per module, listed explicitly below.

Each command module provides ``add_arguments(parser)`` and ``run(args) -> int``. Bad input raises
``AfvsrError``/``ValueError``/``FileNotFoundError``; here it becomes one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from afvsr.errors import AfvsrError

# subcommand -> (module, one-line help). Modules are imported only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("afvsr.demo", "make a clip from a bundled photo, degrade it, upscale it, compare"),
    "upscale": ("afvsr.video.cli", "upscale a video file or a folder of frames"),
    "train": ("afvsr.train.cli", "train a model from a config file"),
    "eval": ("afvsr.evaluation.cli", "evaluate a model on a dataset (PSNR/SSIM)"),
    "table": ("afvsr.evaluation.table", "print and write the comparison table from results"),
    "figures": ("afvsr.evaluation.figures", "attention-map, comparison and training-curve figures"),
    "data": ("afvsr.data.cli", "download and prepare datasets (REDS)"),
    "export": ("afvsr.export", "export a model to ONNX"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Build only the parser of the command asked for, so one command's imports never slow another.
    if argv and argv[0] in COMMANDS:
        module = importlib.import_module(COMMANDS[argv[0]][0])
        parser = argparse.ArgumentParser(prog=f"afvsr {argv[0]}", description=module.__doc__)
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
    try:
        return int(run(args) or 0)
    except (AfvsrError, ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"afvsr: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("afvsr: interrupted", file=sys.stderr)
        return 130
