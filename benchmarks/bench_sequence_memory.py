"""Memory per frame of the fusion model's ``sequence`` mode (frame by frame, and the previous
whole-clip path) against ``basicvsr-small``. Prints JSON.

    .venv/bin/python benchmarks/bench_sequence_memory.py [--size 160x90] [--frames 10 30]

Each run is a fresh process: load the shipped model, warm up on 2 frames of 16x16, then one
forward over ``(1, t, 3, h, w)`` (x4, fp32, one thread, inference mode); it reports the peak RSS
over the RSS before that forward. ``per_frame_mib`` is the slope between the two lengths.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from report import emit, machine

CHILD = r"""
import resource, sys, torch, psutil
torch.set_num_threads(1)
import afvsr
from afvsr.memory import return_large_frees_to_os
return_large_frees_to_os()
name, t, w, h, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
m = afvsr.load_model(name).eval()
kw = {"mode": "sequence"} if hasattr(m, "sequence_frames") else {}
lq = torch.rand(1, t, 3, h, w)
with torch.inference_mode():
    m(torch.rand(1, 2, 3, 16, 16), **kw)
base = psutil.Process().memory_info().rss
with torch.inference_mode():
    if path == "old":
        out = m.fuse_and_reconstruct(m.sequence_features(lq), lq)
    else:
        out = m(lq, **kw)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base) / 2**20)
"""
RUNS = {
    "basicvsr-small": ("basicvsr-small", "new"),
    "afvsr-multihead-small old path": ("afvsr-multihead-small", "old"),
    "afvsr-multihead-small frame by frame": ("afvsr-multihead-small", "new"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="160x90")
    parser.add_argument("--frames", type=int, nargs=2, default=[10, 30])
    parser.add_argument("--output", help="also write the JSON here")
    args = parser.parse_args()
    w, h = args.size.lower().split("x")
    runs, slopes = {}, {}
    for label, (name, path) in RUNS.items():
        runs[label] = {}
        for t in args.frames:
            cmd = [sys.executable, "-c", CHILD, name, str(t), w, h, path]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            runs[label][str(t)] = float(out.strip().splitlines()[-1])
        a, b = (runs[label][str(t)] for t in args.frames)
        slopes[label] = (b - a) / (args.frames[1] - args.frames[0])
    base = slopes["basicvsr-small"]
    report = {
        "benchmark": "sequence_memory",
        "size": args.size,
        "machine": machine(),
        "runs_mib_over_base": runs,
        "per_frame_mib": slopes,
        "ratio_to_basicvsr_small": {k: v / base for k, v in slopes.items()},
    }
    emit(report, args.output)


if __name__ == "__main__":
    main()
