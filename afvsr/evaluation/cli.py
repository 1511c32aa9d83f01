"""The evaluation commands: `afvsr eval`, `afvsr table` and `afvsr figures` (their arguments and
what each runs; the work is in ``evaluate``, ``table`` and ``figures``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from afvsr.errors import AfvsrError
from afvsr.evaluation import figures, table
from afvsr.threads import add_threads_argument, cpu_threads

# `afvsr eval --help`
EVAL_DESCRIPTION = """\
Evaluate a model on a dataset: PSNR and SSIM (RGB and Y), per clip and the mean over clips.

Every frame of every clip is upscaled and scored on uint8-rounded output; metrics are averaged
per clip, then over clips. One line per clip goes to stdout, then, as the last line:

  mean psnr_rgb=NN.NN ssim_rgb=0.NNNN psnr_y=NN.NN ssim_y=0.NNNN (C clips, F frames)

examples:
  afvsr eval --data REDS4 --root ~/data/REDS
  afvsr eval --model basicvsr-small --data shared:val --window 5 --out results/basicvsr5.json
  afvsr eval --model runs/afvsr_single_cpu/model_best.safetensors --data shared:val --mode window
  afvsr eval --model bicubic --data path/to/sequences --save-frames out/bicubic
  afvsr eval --model basicvsr-small --data shared:val --precision bf16
"""


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = EVAL_DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--model",
        metavar="NAME|CKPT|bicubic",
        help="a shipped model name, a .safetensors checkpoint, or 'bicubic' "
        "(default: the package's best shipped model)",
    )
    add_data_arguments(parser)
    parser.add_argument(
        "--mode",
        choices=("window", "sequence"),
        help="AFVSR only: 'window' rebuilds each frame from its groups as in training, "
        "'sequence' propagates once per rate over the whole clip (default: sequence)",
    )
    parser.add_argument(
        "--window",
        type=int,
        metavar="N",
        help="BasicVSR/IconVSR only: rebuild each frame from the N frames centred on it alone "
        "(odd N; near the clip's ends the window is mirrored: frame -1 is frame 1). "
        "Default: the whole clip at once",
    )
    parser.add_argument(
        "--out",
        metavar="FILE.json",
        help="write results as JSON here and as CSV beside it (FILE.csv)",
    )
    parser.add_argument(
        "--save-frames", metavar="DIR", help="write every output frame as DIR/<clip>/NNNNNNNN.png"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace earlier --out results and --save-frames frames (never anything else)",
    )
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:1, … (default: cuda when available)"
    )
    parser.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "bf16", "fp16"),
        help="model arithmetic: auto (default: bf16 where the device has it natively, else "
        "fp32), fp32, bf16 (CPU or CUDA autocast), fp16 (CUDA); the one that ran is recorded "
        "in --out",
    )
    add_threads_argument(parser)
    parser.add_argument(
        "--border",
        type=int,
        default=0,
        metavar="PX",
        help="pixels cropped from each side before scoring (default 0)",
    )
    parser.add_argument(
        "--max-frames",
        type=int,
        metavar="N",
        help="score only the first N frames of each clip (a subset: quick checks, or a table "
        "whose rows all use the same N; afvsr table names it)",
    )
    parser.add_argument(
        "--scale",
        type=int,
        choices=(2, 3, 4),
        help="upscaling factor of the data (default: the model's; 4 for bicubic); a model of "
        "another scale is an error",
    )


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """--data, --root, --lq, --gt-downscale (shared with `afvsr figures`)."""
    parser.add_argument(
        "--data",
        required=True,
        metavar="DATASET[:SPLIT]|DIR",
        help="a named dataset with its split (REDS4, REDSval4, vimeo:test, shared:val, "
        "shared:val-long) or a folder of sequences (GT frames only; LR made by the BI "
        "degradation)",
    )
    parser.add_argument(
        "--root",
        metavar="DIR",
        help="the folder holding a named dataset (REDS, Vimeo-90K; shared:* finds ../shared/data)",
    )
    parser.add_argument(
        "--lq",
        choices=("disk", "bi"),
        help="REDS only: the published LR frames (disk, default) or LR made from GT by BI",
    )
    parser.add_argument(
        "--gt-downscale",
        type=int,
        choices=(1, 2),
        default=1,
        help="2: shrink the ground truth x2 first (JPEG-blocky DAVIS in shared:*, or a folder)",
    )


def data_inputs(args: argparse.Namespace) -> list[Path]:
    """The folders --data/--root read from, for :func:`afvsr.outputs.check_outputs`."""
    from afvsr.data import shared_data_root

    paths = [Path(p) for p in (args.data, args.root) if p is not None and Path(p).exists()]
    if str(args.data).lower().startswith("shared"):
        paths.append(shared_data_root())
    return [p for p in paths if p is not None]


def check_eval_outputs(args: argparse.Namespace) -> None:
    """Refuse --out/--save-frames that would lose data (before any work): the JSON and the CSV
    of --out on one path, an output onto or into an input, earlier results without --force."""
    from afvsr.evaluation.evaluate import csv_path_for
    from afvsr.outputs import CLIP_FRAMES, FILE, Output, check_outputs

    outputs = []
    if args.out is not None:
        out = Path(args.out)
        if not out.parent.is_dir():
            raise FileNotFoundError(f"--out: folder {out.parent} does not exist")
        if csv_path_for(out) == out:
            raise AfvsrError(
                f"--out {out}: the JSON results and their CSV would both be written to {out}; "
                "give --out a .json name"
            )
        outputs += [
            Output(path=out, label="--out", kind=FILE),
            Output(path=csv_path_for(out), label="--out (its CSV)", kind=FILE),
        ]
    if args.save_frames is not None:
        outputs.append(Output(path=Path(args.save_frames), label="--save-frames", kind=CLIP_FRAMES))
    model = [Path(args.model)] if args.model and Path(args.model).exists() else []
    check_outputs(outputs, [*model, *data_inputs(args)], force=args.force)


def open_dataset(args: argparse.Namespace, scale: int):
    """The evaluation dataset named by --data/--root/--lq/--gt-downscale, at ``scale``."""
    from afvsr.data import open_eval_dataset

    return open_eval_dataset(
        args.data, scale=scale, root=args.root, lq=args.lq, gt_downscale=args.gt_downscale
    )


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"vimeo:test"`` → ``("vimeo", "test")``; an existing folder or ``"REDS4"`` → no split."""
    if Path(spec).exists() or ":" not in spec:
        return spec, None
    name, split = spec.rsplit(":", 1)
    return name, split


def run_eval(args: argparse.Namespace) -> int:
    from afvsr.checkpoint import default_model_name, load_upscaler
    from afvsr.evaluation.evaluate import evaluate, format_metrics, write_results
    from afvsr.inference import prepare_for_inference, resolve_device

    def progress(msg: str) -> None:
        print(f"afvsr eval: {msg}", file=sys.stderr, flush=True)

    check_eval_outputs(args)
    device = resolve_device(args.device)
    source = args.model or default_model_name()
    model = prepare_for_inference(
        load_upscaler(source, map_location=device, scale=args.scale or 4),
        device=device,
        precision=args.precision,
    )
    if args.scale is not None and model.scale != args.scale:
        raise AfvsrError(f"model '{source}' upscales x{model.scale} but --scale is {args.scale}")
    dataset = open_dataset(args, model.scale)
    progress(
        f"{source} ({type(model).__name__}, x{model.scale}) on {args.data}: "
        f"{len(dataset)} clips, device {device}"
    )

    def print_clip(clip: dict) -> None:
        print(
            f"{clip['key']} {format_metrics(clip)} "
            f"({clip['num_frames']} frames, {clip['ms_per_frame']:.1f} ms/frame)",
            flush=True,
        )

    with cpu_threads(args.threads):
        results = evaluate(
            model,
            dataset,
            mode=args.mode,
            window=args.window,
            border=args.border,
            max_frames=args.max_frames,
            precision=args.precision,
            save_frames_dir=args.save_frames,
            progress=progress,
            on_clip=print_clip,
        )
    name, split = split_spec(args.data)
    results["model"]["source"] = str(source)
    results["dataset"].update(
        spec=args.data, name=getattr(dataset, "name", None) or name, split=split
    )
    if args.out is not None:
        json_path, csv_path = write_results(results, args.out)
        progress(f"wrote {json_path} and {csv_path}")
    ds = results["dataset"]
    print(
        f"mean {format_metrics(results['mean'])} ({ds['num_clips']} clips, {ds['num_frames']} frames)"
    )
    return 0


# The names of `afvsr eval`'s functions before `table` and `figures` joined this module.
add_arguments, run = add_eval_arguments, run_eval


# ---------------------------------------------------------------------------------------------
# `afvsr table` (afvsr/evaluation/table.py).


def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = table.__doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("results", nargs="+", metavar="RESULTS", help="results JSON files")
    parser.add_argument(
        "--out", default="table.csv", metavar="FILE.csv", help="CSV written here (table.csv)"
    )
    parser.add_argument(
        "--force", action="store_true", help="replace an --out file that is not an earlier table"
    )
    parser.add_argument(
        "--channel",
        choices=("auto", "rgb", "y"),
        default="auto",
        help="metrics on RGB or on Y (default auto: Y for Vimeo-90K/Vid4, RGB otherwise)",
    )


def run_table(args: argparse.Namespace) -> int:
    from afvsr.outputs import Output, check_outputs

    out = Path(args.out)
    # The table replaces its own earlier CSV; another file only with --force; an input never.
    outputs = [Output(path=out, label="--out", own=table.is_table_csv)]
    check_outputs(outputs, args.results, force=args.force)
    all_results = [table.read_results(p) for p in args.results]
    datasets = sorted({str(r["dataset"].get("name")) for r in all_results})
    if len(datasets) > 1:
        raise AfvsrError(
            f"results come from different datasets ({', '.join(datasets)}); one table compares "
            "methods on one dataset"
        )
    subsets = sorted({str(r.get("max_frames")) for r in all_results})
    if len(subsets) > 1:
        raise AfvsrError(
            f"results score different frames (max_frames {', '.join(subsets)}); one table "
            "compares methods on the same frames"
        )
    max_frames = all_results[0].get("max_frames")
    channel = table.pick_channel(args.channel, datasets[0])
    rows = table.build_rows(all_results, channel)
    devices = sorted({str(r.get("device")) for r in all_results})
    num_clips = sorted({r["dataset"]["num_clips"] for r in all_results})
    print(
        f"{datasets[0]} ({'/'.join(map(str, num_clips))} clips"
        f"{f', the first {max_frames} frames of each' if max_frames else ''}): "
        "mean PSNR (dB) / SSIM over clips "
        f"on {channel.upper() if channel == 'y' else 'RGB'}; ms/frame on {', '.join(devices)}\n"
    )
    print(table.markdown(rows), flush=True)
    table.write_csv(rows, out)
    print(f"afvsr table: wrote {out}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------
# `afvsr figures` (afvsr/evaluation/figures.py).


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
