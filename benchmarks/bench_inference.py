"""Inference speed and memory per frame of every shipped model, fp32 against auto, in one run.

    .venv/bin/python benchmarks/bench_inference.py [--frames 6] [--size 640x272]
        [--models NAME,...] [--precision fp32,auto] [--threads 2] [--output FILE.json]

Each model (a shipped name or checkpoint, run as ``afvsr upscale`` runs it: AFVSR in
``sequence`` mode) runs in its own subprocess so memory peaks do not mix: a 2-frame warm-up
(first-call allocations, weight packing), then ``--frames`` frames timed. Reported per run:
ms per output frame, the analytic TFLOP per frame (``afvsr.flops``), the peak RSS, and the
memory per frame, ``(peak after the timed run - peak after the warm-up) / (frames - 2)``: what
one more frame of a chunk costs at this size. ``auto`` is the precision ``afvsr upscale`` picks
(bf16 on CPUs with AVX-512 BF16 or AMX, else fp32); the report gives the CPU kind
(``torch.backends.cpu.get_cpu_capability()`` and the bf16 flags), and per model the ratio
fp32 time / auto time, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
from report import cpu_kind, emit, machine

# Full-size random-weight models for the roofline comparison (speed does not depend on weights).
MODELS = {
    "basicvsr": ("basicvsr", {}, {}),
    "iconvsr": ("iconvsr", {}, {}),
    "afvsr-sequence": ("afvsr", {}, {"mode": "sequence"}),
    "afvsr-window": ("afvsr", {}, {"mode": "window"}),
    "afvsr-multihead-sequence": ("afvsr", {"num_heads": 4}, {"mode": "sequence"}),
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


def run_roofline(name: str, frames: int, h: int, w: int, precision: str) -> dict:
    """A full-size random-weight model (``MODELS``) against the conv roofline, in this process."""
    from afvsr.flops import count_flops
    from afvsr.inference import prepare_for_inference, resolve_precision, run_model
    from afvsr.models import build_model

    family, kwargs, fwd = MODELS[name]
    asked, precision = precision, resolve_precision(precision, "cpu")
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
        "precision": asked,
        "ran": precision,
        "threads": torch.get_num_threads(),
        "ms_per_frame": 1000 * seconds / frames,
        "tflop_per_frame": flops["per_frame"] / 1e12,
        "achieved_gflops": gflops,
        "roofline_gflops": roof,
        "ratio_to_roofline": gflops / best,
        "peak_rss_mb": peak_mb(),
    }


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_one(name: str, frames: int, h: int, w: int, precision: str) -> dict:
    """One model at one precision, in this process."""
    from afvsr.checkpoint import load_model
    from afvsr.flops import count_flops
    from afvsr.inference import autocast_context, prepare_for_inference, resolve_precision
    from afvsr.memory import return_large_frees_to_os
    from afvsr.video.upscale import model_call

    return_large_frees_to_os()  # as afvsr upscale does
    ran = resolve_precision(precision, "cpu")
    model = prepare_for_inference(load_model(name), device="cpu", precision=ran)
    call = model_call(model)
    kwargs = {"mode": "sequence"} if "sequence" in getattr(model, "clip_modes", ()) else {}
    flops = count_flops(model, (1, frames, 3, h, w), **kwargs)
    with torch.inference_mode(), autocast_context(torch.device("cpu"), ran):
        call(torch.rand(1, 2, 3, h, w), slice(None))  # warm-up, also the 2-frame peak
        warm_peak = peak_mb()
        lq = torch.rand(1, frames, 3, h, w)
        start = time.perf_counter()
        call(lq, slice(None))
        seconds = time.perf_counter() - start
    peak = peak_mb()
    return {
        "model": name,
        "precision": precision,
        "ran": ran,
        "threads": torch.get_num_threads(),
        "ms_per_frame": 1000 * seconds / frames,
        "tflop_per_frame": flops["per_frame"] / 1e12,
        "peak_rss_mb": peak,
        "mb_per_frame": (peak - warm_peak) / max(1, frames - 2),
    }


def main() -> None:
    from afvsr.checkpoint import available_models

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=6, help="timed frames (>= 3)")
    parser.add_argument("--size", default="640x272", help="LR width x height")
    parser.add_argument(
        "--models",
        help="comma list of shipped names/checkpoints (default: every shipped model) or of the "
        f"full-size random-weight models {sorted(MODELS)} (then also the conv roofline)",
    )
    parser.add_argument("--precision", default="fp32,auto", help="comma list of fp32,bf16,auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--output", help="also write the JSON here")
    parser.add_argument("--markdown", help="also write the roofline table (full-size models)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.one:
        name, precision = args.one.rsplit(":", 1)
        run = run_roofline if name in MODELS else run_one
        print(json.dumps(run(name, args.frames, h, w, precision)))
        return
    models = args.models.split(",") if args.models else available_models()[:-1]  # no bicubic
    results = []
    for name in models:
        for precision in args.precision.split(","):
            cmd = [sys.executable, __file__, "--frames", str(args.frames), "--size", args.size,
                   "--threads", str(args.threads), "--one", f"{name}:{precision}"]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), file=sys.stderr)
    by = {(r["model"], r["precision"]): r["ms_per_frame"] for r in results}
    ratios = {
        m: by[(m, "fp32")] / by[(m, "auto")]
        for m in models
        if (m, "fp32") in by and (m, "auto") in by
    }
    report = {
        "benchmark": "inference",
        "machine": machine(),
        "cpu_kind": cpu_kind(),
        "frames": args.frames,
        "size": args.size,
        "results": results,
        "fp32_over_auto_time": ratios,
    }
    emit(report, args.output)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown_table(report))


def markdown_table(report: dict) -> str:
    """The table in docs/performance.md, "Speed against the conv roofline", from a report."""
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
