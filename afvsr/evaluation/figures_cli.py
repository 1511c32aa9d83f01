"""`afvsr figures`: attention maps, comparison crops and training curves (their arguments and
what each runs; the drawing is in ``afvsr.evaluation.figures``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from afvsr.errors import AfvsrError
from afvsr.evaluation import figures
from afvsr.evaluation.cli import add_data_arguments, data_inputs, open_dataset


def _figure_output_args(p: argparse.ArgumentParser, out: str) -> None:
    p.add_argument("--out", default=out, metavar="FILE.png", help=f"PNG written here ({out})")
    p.add_argument("--dpi", type=int, default=100, help="pixels per inch of the PNG (100)")
    p.add_argument(
        "--force", action="store_true", help="replace an --out file that is not an earlier figure"
    )


def _figure_clip_args(p: argparse.ArgumentParser) -> None:
    add_data_arguments(p)
    p.add_argument("--clip", default="0", help="clip name or index (default: the first clip)")
    p.add_argument("--frame", type=int, help="frame index in the clip (default: the middle)")
    p.add_argument("--device", default="auto", help="cpu, cuda, … (default: cuda when available)")


def add_figures_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = figures.__doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="figure", metavar="FIGURE", required=True)

    p = sub.add_parser("attention", help="attention maps per head and group for one frame")
    p.add_argument("--model", metavar="NAME|CKPT", help="an AFVSR model (default: shipped one)")
    _figure_clip_args(p)
    p.add_argument(
        "--channels",
        metavar="C[,C…]",
        help="feature channels to show (default: per head, the one whose attention varies most)",
    )
    _figure_output_args(p, "attention.png")

    p = sub.add_parser("compare", help="crops of several models' outputs and the ground truth")
    p.add_argument(
        "--models",
        nargs="+",
        metavar="NAME|CKPT",
        help=f"models, in order (default: those of {', '.join(figures.COMPARE_DEFAULTS)} "
        "available)",
    )
    p.add_argument("--labels", nargs="+", help="panel labels, one per model")
    p.add_argument("--crop", metavar="X,Y,W,H", help="region in HR pixels (default: centre)")
    _figure_clip_args(p)
    _figure_output_args(p, "compare.png")

    p = sub.add_parser("curves", help="training loss and validation PSNR from JSONL logs")
    p.add_argument("logs", nargs="+", metavar="LOG.jsonl|RUN_DIR", help="training logs")
    _figure_output_args(p, "curves.png")


def _figure_clip(args: argparse.Namespace, scale: int) -> tuple[str, Any, Any, int]:
    """``(key, lq (t, 3, h, w), gt (t, 3, H, W), frame)`` chosen by --data/--clip/--frame."""
    ds = open_dataset(args, scale)
    if len(ds) == 0:
        raise AfvsrError(f"dataset {args.data} has no clips")
    sample = None
    if args.clip.isdigit() and int(args.clip) < len(ds):
        sample = ds[int(args.clip)]
    else:
        for i in range(len(ds)):
            if ds[i]["key"] == args.clip:
                sample = ds[i]
                break
    if sample is None:
        raise AfvsrError(f"no clip {args.clip!r} in {args.data} ({len(ds)} clips)")
    if sample.get("gt") is None:
        raise AfvsrError(f"clip {sample['key']!r} has no ground truth")
    t = sample["lq"].shape[0]
    frame = t // 2 if args.frame is None else args.frame
    if not 0 <= frame < t:
        raise AfvsrError(f"--frame {frame}: clip {sample['key']!r} has frames 0..{t - 1}")
    return sample["key"], sample["lq"], sample["gt"], frame


def _run_attention(args: argparse.Namespace) -> Path:
    import torch

    from afvsr.checkpoint import default_model_name, load_model
    from afvsr.inference import resolve_device

    device = resolve_device(args.device)
    source = args.model or default_model_name()
    model = load_model(source, map_location=device)
    if not hasattr(model, "forward_groups"):
        raise AfvsrError(f"model '{source}' is not an AFVSR model; it has no attention maps")
    key, lq, _, frame = _figure_clip(args, model.scale)
    channels = None
    if args.channels:
        try:
            channels = [int(c) for c in args.channels.split(",")]
        except ValueError:
            raise AfvsrError(
                f"--channels: expected integers like 0,5, got {args.channels}"
            ) from None
    idx = torch.tensor(model.group_indices(frame, lq.shape[0]))  # (G, W)
    with torch.inference_mode():
        _, maps = model.forward_groups(lq[idx][None].to(device), return_attention=True)
    fig = figures.attention_figure(
        {k: v[0] for k, v in maps.items()}, rates=model.rates, channels=channels
    )
    fig.suptitle(f"{source}: clip {key}, frame {frame}", fontsize=9)
    return figures.save_png(fig, args.out, dpi=args.dpi)


def _run_compare(args: argparse.Namespace) -> Path:
    from afvsr.checkpoint import available_models, load_model
    from afvsr.evaluation.evaluate import model_name, upscale_clip
    from afvsr.inference import resolve_device

    device = resolve_device(args.device)
    sources = args.models or [m for m in figures.COMPARE_DEFAULTS if m in available_models()]
    if args.labels is not None and len(args.labels) != len(sources):
        raise AfvsrError(
            f"expected {len(sources)} --labels (one per model), got {len(args.labels)}"
        )
    if not sources:
        raise AfvsrError("no models to compare: pass --models NAME|CKPT …")
    # Networks first: bicubic then takes their scale.
    nets = {s: load_model(s, map_location=device) for s in sources if s != "bicubic"}
    scales = {m.scale for m in nets.values()}
    if len(scales) > 1:
        raise AfvsrError(f"the models upscale by different factors: {sorted(scales)}")
    scale = scales.pop() if scales else 4
    models = [nets[s] if s in nets else load_model(s, scale=scale) for s in sources]
    key, lq, gt, frame = _figure_clip(args, scale)
    crop = figures.parse_crop(args.crop, gt.shape[-2], gt.shape[-1])
    panels = []
    for i, (source, model) in enumerate(zip(sources, models, strict=True)):
        print(f"afvsr figures: upscaling clip {key} with {source}", file=sys.stderr, flush=True)
        out = upscale_clip(model, lq.to(device))[frame].cpu()
        label = (
            args.labels[i] if args.labels else figures.PRETTY.get(model_name(model), str(source))
        )
        panels.append((label, out))
    fig = figures.compare_figure(panels, gt[frame], crop)
    return figures.save_png(fig, args.out, dpi=args.dpi)


def _run_curves(args: argparse.Namespace) -> Path:
    logs = {}
    for log in args.logs:
        path = Path(log)
        label = (path if path.is_dir() else path.parent).name or path.stem
        logs[label if label not in logs else str(path)] = figures.read_log(path)
    return figures.save_png(figures.curves_figure(logs), args.out, dpi=args.dpi)


def check_figure_output(args: argparse.Namespace) -> None:
    """Refuse an --out that is, holds or lies inside an input (a log, a model, the data), before
    any work; an earlier figure at --out is replaced, as each run replaces its own PNG, and any
    other existing file only with --force."""
    from afvsr.outputs import Output, check_outputs

    logs = [Path(p) for p in getattr(args, "logs", [])]
    # A run folder's log is the input; a figure may go next to it, into the run folder.
    inputs = [log for p in logs for log in (sorted(p.glob("*.jsonl")) if p.is_dir() else [p])]
    inputs += getattr(args, "models", None) or []
    inputs.append(getattr(args, "model", None))
    if getattr(args, "data", None) is not None:
        inputs += data_inputs(args)
    outputs = [Output(path=Path(args.out), label="--out", own=figures.is_afvsr_png)]
    check_outputs(outputs, inputs, force=args.force)


def run_figures(args: argparse.Namespace) -> int:
    runner = {"attention": _run_attention, "compare": _run_compare, "curves": _run_curves}
    check_figure_output(args)
    path = runner[args.figure](args)
    print(f"afvsr figures: wrote {path}", file=sys.stderr)
    return 0
