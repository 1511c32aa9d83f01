"""Inference speed and memory per frame of every shipped model, fp32 against auto, in one run.

    .venv/bin/python benchmarks/bench_inference.py [--frames 6] [--size 640x272]
        [--models NAME,...] [--precision fp32,auto] [--threads 2] [--output FILE.json]

Each model (a shipped name or checkpoint, run as ``afvsr upscale`` runs it: the fusion model in
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
import inspect
import json
import resource
import subprocess
import sys
import time

import torch
from report import emit, machine


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
    kwargs = {"mode": "sequence"} if "mode" in inspect.signature(model.forward).parameters else {}
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


def cpu_kind() -> dict:
    from afvsr.inference import cpu_flags

    flags = cpu_flags()
    return {
        "capability": torch.backends.cpu.get_cpu_capability(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx": "amx_bf16" in flags or "amx_tile" in flags,
    }


def main() -> None:
    from afvsr.checkpoint import available_models

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=6, help="timed frames (>= 3)")
    parser.add_argument("--size", default="640x272", help="LR width x height")
    parser.add_argument("--models", help="comma list (default: every shipped model)")
    parser.add_argument("--precision", default="fp32,auto", help="comma list of fp32,bf16,auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--output", help="also write the JSON here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.one:
        name, precision = args.one.rsplit(":", 1)
        print(json.dumps(run_one(name, args.frames, h, w, precision)))
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


if __name__ == "__main__":
    main()
