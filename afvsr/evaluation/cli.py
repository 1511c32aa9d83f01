"""The evaluation commands `afvsr eval` and `afvsr table` (their arguments and what each runs;
the work is in ``evaluate`` and ``table``); `afvsr figures` is in ``figures_cli``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from afvsr.errors import AfvsrError
from afvsr.evaluation import table
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


# `afvsr eval`'s functions under the names they had before `table` joined this module.
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
