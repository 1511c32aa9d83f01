"""The `afvsr` command: one subcommand per entry of COMMANDS, and the commands of the top-level
modules (`afvsr demo`, `afvsr export`, `afvsr convert`).

Each command is a pair of functions in the ``cli.py`` of its package: one adds its arguments to
an argparse parser, one runs it and returns the exit status. Bad input raises
``AfvsrError``/``ValueError``/``OSError`` (any file-system error); here it becomes one line,
``afvsr: error: ...``, on stderr and exit 2, as do command-line mistakes; afvsr's own warnings
print as one line too (``afvsr: warning: ...``). SIGTERM is handled like Ctrl-C (temporary
files removed, nothing half-written left), exit 143 (130 for Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple, NoReturn

from afvsr.errors import AfvsrError, Interrupted, RenamedWarning, exit_status, one_line
from afvsr.threads import add_threads_argument, cpu_threads


class Command(NamedTuple):
    """Where a subcommand lives: ``module.<add_arguments>(parser)`` and ``module.<run>(args)``.

    The parser's description is the module's docstring unless ``add_arguments`` sets its own.
    """

    module: str
    help: str
    add_arguments: str = "add_arguments"
    run: str = "run"


# subcommand -> where it lives. A command's module is imported only when that command is run or
# its --help is asked for: `afvsr --help` imports none of them (and so not torch).
COMMANDS: dict[str, Command] = {
    "demo": Command(
        "afvsr.cli",
        "make a clip from a bundled photo, degrade it, upscale it, compare",
        "add_demo_arguments",
        "run_demo",
    ),
    "upscale": Command("afvsr.video.cli", "upscale a video file or a folder of frames"),
    "train": Command("afvsr.train.cli", "train a model from a config file"),
    "flow-eval": Command("afvsr.flow.cli", "evaluate a SPyNet: EPE on synthetic pairs, warp PSNR"),
    "eval": Command(
        "afvsr.evaluation.cli",
        "evaluate a model on a dataset (PSNR/SSIM)",
        "add_eval_arguments",
        "run_eval",
    ),
    "table": Command(
        "afvsr.evaluation.cli",
        "print and write the comparison table from results",
        "add_table_arguments",
        "run_table",
    ),
    "figures": Command(
        "afvsr.evaluation.figures_cli",
        "attention-map, comparison and training-curve figures",
        "add_figures_arguments",
        "run_figures",
    ),
    "data": Command("afvsr.data.cli", "download and prepare datasets (REDS)"),
    "export": Command("afvsr.cli", "export a model to ONNX", "add_export_arguments", "run_export"),
    "convert": Command(
        "afvsr.cli",
        "convert model files between afvsr and BasicSR/mmagic",
        "add_convert_arguments",
        "run_convert",
    ),
}


class Parser(argparse.ArgumentParser):
    """argparse, with its errors in the one-line form of every other error (exit 2)."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(
            f"afvsr: error: {one_line(ValueError(message))} (see {self.prog} --help)\n"
        )
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: the list of subcommands, without their arguments (no imports)."""
    parser = Parser(
        prog="afvsr",
        description="Video super-resolution with attention-based fusion of frame-rate groups.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        sub.add_parser(name, help=command.help)
    return parser


def command_parser(
    name: str,
) -> tuple[argparse.ArgumentParser, Callable[[argparse.Namespace], int]]:
    """The parser of one subcommand, with its arguments, and the function that runs it."""
    command = COMMANDS[name]
    module = importlib.import_module(command.module)
    parser = Parser(prog=f"afvsr {name}", description=module.__doc__)
    getattr(module, command.add_arguments)(parser)
    return parser, getattr(module, command.run)


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


@contextlib.contextmanager
def _warnings_on_one_line() -> Iterator[None]:
    """While the command runs, afvsr's own warnings (:class:`RenamedWarning`) print as one line,
    ``afvsr: warning: ...``, on stderr; every other warning shows as Python shows it."""
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, RenamedWarning):
            print(f"afvsr: warning: {one_line(message)}", file=file or sys.stderr)
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Build only the parser of the command asked for, so one command's imports never slow another.
    try:
        if argv and argv[0] in COMMANDS:
            parser, run = command_parser(argv[0])
            args = parser.parse_args(argv[1:])
        else:  # --help, an unknown command (argparse exits) or no command (the list, exit 2)
            parser = build_parser()
            parser.parse_args(argv)
            parser.print_help()
            return 2
    except SystemExit as exc:  # --help (0) or a command-line mistake (2, one line printed)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        with _terminate_like_ctrl_c(), _warnings_on_one_line():
            return int(run(args) or 0)
    except (AfvsrError, ValueError, OSError) as exc:
        print(f"afvsr: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        name = exc.args[0] if isinstance(exc, Interrupted) else "Ctrl-C (SIGINT)"
        print(f"afvsr: error: interrupted by {name}", file=sys.stderr)
        return exit_status(exc)


# ---------------------------------------------------------------------------------------------
# `afvsr demo` (afvsr/demo.py). Library imports are inside the functions: they import torch.


def parse_size(text: str) -> tuple[int, int]:
    """``"256x192"`` -> ``(256, 192)``, each divisible by the demo's scale (4)."""
    from afvsr.demo import SCALE  # torch: only when the demo's parser is built

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT like 256x192, got {text!r}"
        ) from None
    if w < SCALE or h < SCALE or w % SCALE or h % SCALE:
        raise argparse.ArgumentTypeError(f"expected a size divisible by {SCALE}, got {text!r}")
    return w, h


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    import afvsr.demo  # torch: only when this command runs or shows its --help

    parser.description = afvsr.demo.__doc__
    parser.add_argument("-o", "--output-dir", default="demo_output", help="default: demo_output")
    parser.add_argument(
        "--model",
        default="default",
        help="model name or checkpoint (default: the best shipped model, else bicubic)",
    )
    parser.add_argument(
        "--image", default="astronaut", choices=afvsr.demo.IMAGES, help="default: astronaut"
    )
    parser.add_argument("--frames", type=int, default=24, help="clip length (default: 24)")
    parser.add_argument(
        "--size",
        type=parse_size,
        default=(256, 192),
        metavar="WxH",
        help="ground-truth frame size, divisible by 4 (default: 256x192; LR is a quarter)",
    )
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    add_threads_argument(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace files of the demo's names that an earlier demo did not write",
    )


def run_demo(args: argparse.Namespace) -> int:
    from afvsr.demo import SCALE, make_demo

    if args.frames < 1:
        raise AfvsrError(f"expected --frames >= 1, got {args.frames}")
    with cpu_threads(args.threads):
        done = make_demo(
            args.output_dir,
            model=args.model,
            image=args.image,
            num_frames=args.frames,
            size=args.size,
            device=args.device,
            quiet=args.quiet,
            force=args.force,
        )
    name, (w, h) = done["model"], args.size
    psnr_bicubic, psnr_model = done["psnr_bicubic"], done["psnr_model"]
    if name == "bicubic":
        print("note: no trained weights are shipped in this install; the default model is bicubic")
    print(
        f"demo: {args.frames} frames of '{args.image}', {w // SCALE}x{h // SCALE} -> {w}x{h} "
        f"(BI x{SCALE}); PSNR-Y bicubic {psnr_bicubic:.2f} dB, {name} {psnr_model:.2f} dB "
        f"({psnr_model - psnr_bicubic:+.2f} dB); wrote {done['video']} and "
        f"{done['comparison']} in {done['seconds']:.1f} s",
        flush=True,
    )
    return 0


# ---------------------------------------------------------------------------------------------
# `afvsr export` (afvsr/export.py).


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    import afvsr.export  # torch: only when this command runs or shows its --help
    from afvsr.export import DEFAULT_FRAMES, DEFAULT_OPSET, MIN_OPSET

    parser.description = afvsr.export.__doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "model", metavar="MODEL", help="shipped model name or checkpoint file (BasicVSR or AFVSR)"
    )
    parser.add_argument("--onnx", required=True, metavar="OUT.onnx", help="the ONNX file to write")
    parser.add_argument(
        "--frames",
        type=int,
        default=DEFAULT_FRAMES,
        metavar="N",
        help=f"frames per call, fixed in the graph (default: {DEFAULT_FRAMES}, one `afvsr upscale` "
        "chunk with its context at that command's defaults for BasicVSR); shorter clips are "
        "mirror-padded to N",
    )
    parser.add_argument(
        "--opset",
        type=int,
        default=DEFAULT_OPSET,
        metavar="K",
        help=f"ONNX opset, >= {MIN_OPSET} (default: {DEFAULT_OPSET})",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing output")


def run_export(args: argparse.Namespace) -> int:
    from afvsr.checkpoint import load_model
    from afvsr.export import export_onnx
    from afvsr.models import AFVSR, BasicVSR
    from afvsr.outputs import Output, check_outputs

    out = Path(args.onnx)
    if out.is_dir():
        raise AfvsrError(f"{out} is a folder; expected an .onnx file path")
    check_outputs([Output(path=out, label="--onnx")], [args.model], force=args.force)
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise AfvsrError(
            "ONNX export needs the 'onnx' package: pip install 'afvsr[onnx]'"
        ) from None
    model = load_model(args.model)
    if type(model) not in (BasicVSR, AFVSR):
        raise AfvsrError(
            f"{args.model}: only BasicVSR and AFVSR models export to ONNX, "
            f"got {type(model).__name__}"
        )
    frames = args.frames
    print(
        f"exporting {args.model} ({frames} frames per call, opset {args.opset})...", file=sys.stderr
    )
    export_onnx(model, out, num_frames=frames, opset=args.opset, source=args.model)
    size_mb = out.stat().st_size / 1e6
    print(
        f"wrote {out}: {type(model).__name__} x{model.scale}, input lq (1, {frames}, 3, h, w), "
        f"{size_mb:.1f} MB"
    )
    return 0


# ---------------------------------------------------------------------------------------------
# `afvsr convert` (afvsr/convert.py).


def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    import afvsr.convert  # torch: only when this command runs or shows its --help
    from afvsr.published_keys import LAYOUTS

    parser.description = afvsr.convert.__doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("input", help="a .pth (BasicSR/mmagic) or an afvsr .safetensors model file")
    parser.add_argument("output", help="the file to write (.safetensors, or .pth with --to)")
    parser.add_argument(
        "--to",
        choices=LAYOUTS,
        help="write a .pth in this project's layout (input: an afvsr model file)",
    )
    parser.add_argument(
        "--keyframe-stride",
        type=int,
        help="IconVSR: the keyframe stride to record (not in the weights; default 5)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing output file")


def run_convert(args: argparse.Namespace) -> int:
    from afvsr.convert import afvsr_to_published, published_to_afvsr
    from afvsr.outputs import Output, check_outputs
    from afvsr.published import is_torch_file

    src, dst = Path(args.input), Path(args.output)
    if not src.is_file():
        raise AfvsrError(f"no input file {src}")
    check_outputs([Output(path=dst, label="output")], [src], force=args.force)
    if is_torch_file(src):
        if args.to:
            raise AfvsrError(f"{src}: --to writes a .pth from an afvsr model file; this is a .pth")
        line = published_to_afvsr(src, dst, keyframe_stride=args.keyframe_stride)
    else:
        if not args.to:
            raise AfvsrError(f"{src}: an afvsr model file: say --to basicsr or --to mmagic")
        if args.keyframe_stride is not None:
            raise AfvsrError("--keyframe-stride applies when reading a .pth")
        line = afvsr_to_published(src, dst, args.to)
    print(line)
    print(f"wrote {dst}", file=sys.stderr)
    return 0
