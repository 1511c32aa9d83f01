"""Training-sample throughput on the shared DAVIS data (the 17 training sequences).

Prints one JSON object: samples per second for sequence samples (BasicVSR/IconVSR) and
frame-rate-group samples (AFVSR), read through a DataLoader with 0 and 2 workers.
Compare with the step time of the CPU training preset: data loading should take a small part.

    python benchmarks/bench_data.py [--samples 48] [--patch-size 64] [--num-frames 7] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch
from torch.utils.data import DataLoader

from afvsr.data import build_train_dataset, shared_data_root


def throughput(dataset, *, workers: int, samples: int, batch_size: int) -> float:
    """Samples per second over ``samples`` samples (after one warm-up batch)."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(0))  # fmt: skip
    batches = iter(loader)
    next(batches)  # warm-up: worker start, caches
    start = time.perf_counter()
    count = 0
    for batch in batches:
        count += batch["lq"].shape[0]
        if count >= samples:
            break
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=48, help="samples timed per setting")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--patch-size", type=int, default=64, help="LR patch side")
    parser.add_argument("--num-frames", type=int, default=7, help="sequence samples: frames")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument(
        "--threads", type=int, help="torch threads of the main process (workers always use 1)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if shared_data_root() is None:
        raise SystemExit("shared data (../shared/data or $AFVSR_SHARED_DATA) not found")
    common = {"dataset": "shared", "patch_size": args.patch_size, "seed": 0}
    settings = {
        f"sequence_t{args.num_frames}": {**common, "samples": "sequence",
                                         "num_frames": args.num_frames},
        "groups_r123_w5": {**common, "samples": "groups", "rates": [1, 2, 3], "window": 5},
    }  # fmt: skip
    results = {}
    for name, cfg in settings.items():
        dataset = build_train_dataset(cfg)
        for workers in args.workers:
            rate = throughput(
                dataset, workers=workers, samples=args.samples, batch_size=args.batch_size
            )
            results[f"{name}/workers{workers}"] = round(rate, 2)
    report = {
        "benchmark": "data: training samples per second (shared DAVIS, LR made by BI on the fly)",
        "patch_size": args.patch_size,
        "batch_size": args.batch_size,
        "samples_per_s": results,
        "torch_threads_main": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
