"""Inference speed against this machine's conv roofline, measured in one run. Prints JSON.

    .venv/bin/python benchmarks/bench_inference.py [--frames 20] [--size 320x180] [--models ...]

For each model (full size, ×4, random weights: speed does not depend on them) it reports ms per
output frame, the analytic FLOPs per frame (afvsr.flops), the achieved GFLOP/s, its ratio to the
roofline (GFLOP/s of a lone 64→64 3x3 conv on the same LR map, best memory format, measured in
the same process right before and right after the model, the fastest call of either), and the
peak RSS of the process (each model runs in its own subprocess so peaks do not mix).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
from report import emit, machine

MODELS = {
    "basicvsr": ("basicvsr", {}, {}),
    "iconvsr": ("iconvsr", {}, {}),
    "fusion-sequence": ("fusion", {}, {"mode": "sequence"}),
    "fusion-window": ("fusion", {}, {"mode": "window"}),
    "fusion-multihead-sequence": ("fusion", {"num_heads": 4}, {"mode": "sequence"}),
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def conv_roofline(h: int, w: int, dtype: torch.dtype, repeats: int = 8) -> dict[str, float]:
    """GFLOP/s of a 64→64 3x3 conv on a (1, 64, h, w) map, for both memory formats: the fastest
    of ``repeats`` timed calls after two warm-up calls (a peak, as a roofline should be)."""
    flops = 2 * 64 * 64 * 9 * h * w
    out = {}
    for fmt_name, fmt in (
        ("contiguous", torch.contiguous_format),
        ("channels_last", torch.channels_last),
    ):
        conv = torch.nn.Conv2d(64, 64, 3, 1, 1).to(dtype).to(memory_format=fmt).eval()
        x = torch.rand(1, 64, h, w, dtype=dtype).contiguous(memory_format=fmt)
        with torch.inference_mode():
            conv(x)
            conv(x)
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                conv(x)
                best = min(best, time.perf_counter() - start)
        out[fmt_name] = flops / best / 1e9
    return out


def run_one(name: str, frames: int, h: int, w: int, precision: str) -> dict:
    from afvsr.flops import count_flops
    from afvsr.inference import prepare_for_inference, run_model

    family, kwargs, fwd = MODELS[name]
    from afvsr.models import build_model

    model = build_model(family, **kwargs).eval()
    flops = count_flops(model, (1, frames, 3, h, w), **fwd)
    roof = conv_roofline(h, w, DTYPES[precision])
    model = prepare_for_inference(model, device="cpu", precision=precision)
    lq = torch.rand(1, frames, 3, h, w)
    warm = torch.rand(1, 2, 3, h, w)
    run_model(model, warm, precision=precision, **fwd)  # first-call allocations, weight packing
    start = time.perf_counter()
    run_model(model, lq, precision=precision, **fwd)
    seconds = time.perf_counter() - start
    gflops = flops["total"] / seconds / 1e9
    # Measured again after the model: the higher of the two peaks, so load that came and went
    # during the run cannot flatter the ratio.
    roof = {k: max(v, conv_roofline(h, w, DTYPES[precision])[k]) for k, v in roof.items()}
    best = max(roof.values())
    return {
        "model": name,
        "precision": precision,
        "threads": torch.get_num_threads(),
        "ms_per_frame": 1000 * seconds / frames,
        "tflop_per_frame": flops["per_frame"] / 1e12,
        "achieved_gflops": gflops,
        "roofline_gflops": roof,
        "ratio_to_roofline": gflops / best,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--size", default="320x180", help="LR width x height")
    parser.add_argument(
        "--models", default="basicvsr,fusion-sequence", help=f"comma list of {sorted(MODELS)}"
    )
    parser.add_argument("--precision", default="fp32", help="comma list of fp32,bf16")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument(
        "--markdown", help="also write a markdown table (the README's) to this file"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.one:
        name, precision = args.one.split(":")
        print(json.dumps(run_one(name, args.frames, h, w, precision)))
        return
    results = []
    for precision in args.precision.split(","):
        for name in args.models.split(","):
            cmd = [
                sys.executable,
                __file__,
                "--frames",
                str(args.frames),
                "--size",
                args.size,
                "--threads",
                str(args.threads),
                "--one",
                f"{name}:{precision}",
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), file=sys.stderr)
    report = {"machine": machine(), "frames": args.frames, "size": args.size, "results": results}
    emit(report)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown_table(report))


def markdown_table(report: dict) -> str:
    """The README's Performance table from a report."""
    m = report["machine"]
    lines = [
        f"{report['frames']} frames of {report['size']} LR, ×4, full-size models, "
        f"{m['threads']} thread(s), torch {m['torch']} ({m['cpu_capability']}).",
        "",
        "| model | precision | TFLOP/frame | ms/frame | GFLOP/s | conv roofline GFLOP/s | ratio | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        roof = max(r["roofline_gflops"].values())
        lines.append(
            f"| {r['model']} | {r['precision']} | {r['tflop_per_frame']:.3f} | {r['ms_per_frame']:.0f} "
            f"| {r['achieved_gflops']:.1f} | {roof:.1f} | {r['ratio_to_roofline']:.2f} | {r['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
