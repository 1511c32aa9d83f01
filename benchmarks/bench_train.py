"""Training speed of the CPU presets: iterations/s, CPU seconds per step and peak memory.

    python benchmarks/bench_train.py                      # every configs/cpu/*.toml (vsr task)
    python benchmarks/bench_train.py configs/cpu/basicvsr.toml --iters 6 --threads 2
    python benchmarks/bench_train.py configs/cpu/basicvsr_campaign.toml --layouts  # both layouts

Each preset runs in its own process (so its peak RSS is its own) through the real loop
(``afvsr.train.loop.train``), data loading included, no validation or TensorBoard:
``--warmup`` steps untimed, then ``--iters`` timed steps, once with SPyNet frozen (the first
``spynet_freeze_iters`` steps of a run: no backward through SPyNet) and once with it training.
Stage-2 presets get a random backbone of the right size; ``spynet_checkpoint`` is ignored.

By default it runs with 1 thread: then the CPU seconds of a step are what the step costs even
when other processes share the machine (with 2 threads on a busy machine, OpenMP threads spin
while waiting for each other and both wall time and CPU time blow up). ``cpu_hours`` is the
CPU time of a whole run's training steps: its wall time on one idle core.

``--layouts`` times each phase twice, with ``[train] channels_last`` on (the default) and off,
and reports ``channels_last_speedup`` per phase: contiguous CPU seconds per step over
channels-last ones, taken in one run.

Prints one JSON object: the machine (CPU kind included) and, per preset, for each phase
``it_s_median``, ``it_s_best`` (wall clock) and ``cpu_s_per_it``; ``peak_rss_mb``;
``cpu_hours``; the settings that decide the speed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from report import emit, machine

REPO = Path(__file__).resolve().parents[1]


def _phase(
    cfg_path: Path, out: Path, *, frozen: bool, args, channels_last: bool | None = None
) -> dict[str, float]:
    """Speed of ``args.iters`` steps after ``args.warmup`` steps of one preset.

    Returns the median and best wall-clock it/s and the median CPU seconds per step (all of
    this process's threads; robust to other processes on the machine when threads = 1)."""
    from afvsr.checkpoint import save_model
    from afvsr.models import build_model
    from afvsr.train.config import load_config
    from afvsr.train.loop import train

    name = ("frozen" if frozen else "training") + {None: "", True: "_cl", False: "_contig"}[
        channels_last
    ]
    overrides = [
        f"run.out_dir={json.dumps(str(out))}",
        f"run.name={name}",
        f"train.iterations={args.warmup + args.iters}",
        'train.spynet_checkpoint=""',
        f"train.spynet_freeze_iters={10**9 if frozen else 0}",
        "val.every=0",
        "log.every=1",
        "log.checkpoint_every=0",
        "log.tensorboard=false",
    ]
    if args.threads:
        overrides.append(f"run.threads={args.threads}")
    if channels_last is not None:
        overrides.append(f"train.channels_last={str(channels_last).lower()}")
    cfg = load_config(cfg_path, overrides)
    if cfg["train"]["backbone_checkpoint"]:
        m = cfg["model"]
        backbone = out / "backbone.safetensors"
        kwargs = {k: m[k] for k in ("mid_channels", "num_blocks", "scale")}
        save_model(build_model("basicvsr", **kwargs), backbone)
        overrides.append(f"train.backbone_checkpoint={json.dumps(str(backbone))}")
        cfg = load_config(cfg_path, overrides)
    train(cfg, source=str(cfg_path))
    records = [json.loads(x) for x in (out / name / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in records if "it_s" in r and r["step"] > args.warmup]
    speeds = sorted(r["it_s"] for r in timed)
    return {
        "it_s_median": round(statistics.median(speeds), 4),
        "it_s_best": round(speeds[-1], 4),
        "cpu_s_per_it": round(statistics.median(r["cpu_s_it"] for r in timed), 3),
    }


def run_one(cfg_path: Path, args) -> dict:
    import resource

    import torch

    from afvsr.train.config import load_config

    cfg = load_config(cfg_path, ['train.spynet_checkpoint=""', 'train.backbone_checkpoint=""'])
    stage2 = bool(load_config(cfg_path)["train"]["backbone_checkpoint"])
    with tempfile.TemporaryDirectory() as tmp:
        phases = {"spynet_frozen": _phase(cfg_path, Path(tmp), frozen=True, args=args)}
        if not stage2:  # stage 2 keeps SPyNet frozen for the whole run
            phases["spynet_training"] = _phase(cfg_path, Path(tmp), frozen=False, args=args)
        if args.layouts:
            for key, phase in list(phases.items()):
                frozen_phase = key == "spynet_frozen"
                layout = {
                    cl: _phase(
                        cfg_path, Path(tmp), frozen=frozen_phase, args=args, channels_last=cl
                    )
                    for cl in (True, False)
                }
                phase["contiguous"] = layout[False]
                phase["channels_last"] = layout[True]
                phase["channels_last_speedup"] = round(
                    layout[False]["cpu_s_per_it"] / layout[True]["cpu_s_per_it"], 3
                )
    t, d = cfg["train"], cfg["data"]
    frozen = t["iterations"] if stage2 else min(t["spynet_freeze_iters"], t["iterations"])
    cpu_seconds = frozen * phases["spynet_frozen"]["cpu_s_per_it"]
    if not stage2:
        cpu_seconds += (t["iterations"] - frozen) * phases["spynet_training"]["cpu_s_per_it"]
    return {
        **phases,
        "threads": args.threads or cfg["run"]["threads"] or torch.get_num_threads(),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "iterations": t["iterations"],
        "spynet_frozen_iterations": frozen,
        # Training steps only (no validation): the CPU time of the whole run, i.e. its hours
        # on one idle core; two idle cores take less (threads = 2).
        "cpu_hours": round(cpu_seconds / 3600, 2),
        "model": cfg["model"],
        "batch_size": t["batch_size"],
        "patch_size": d["patch_size"],
        "samples": d["samples"],
        "num_frames": d["num_frames"] if d["samples"] == "sequence" else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "configs", nargs="*", type=Path, help="presets (default: configs/cpu/*.toml)"
    )
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--output", help="also write the JSON here")
    parser.add_argument("--iters", type=int, default=4)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: CPU seconds per step stay honest on a busy machine; "
        "0 = the preset's own)",
    )
    parser.add_argument(
        "--layouts", action="store_true", help="also time channels_last on and off (a ratio)"
    )
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.configs[0], args)))
        return 0
    configs = args.configs or sorted((REPO / "configs" / "cpu").glob("*.toml"))
    results = {}
    from afvsr.train.config import read_config_file

    for path in configs:
        if read_config_file(path).get("run", {}).get("task", "vsr") != "vsr":
            continue  # stage 0 (task "flow") has its own numbers
        cmd = [sys.executable, __file__, str(path), "--one", "--warmup", str(args.warmup),
               "--iters", str(args.iters), "--threads", str(args.threads)]  # fmt: skip
        cmd += ["--layouts"] if args.layouts else []
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=os.environ)
        if done.returncode != 0:
            results[str(path)] = {"error": done.stderr.strip().splitlines()[-1:]}
        else:
            results[str(path.relative_to(REPO) if path.is_absolute() else path)] = json.loads(
                done.stdout.strip().splitlines()[-1]
            )
        print(f"{path.name}: {results[list(results)[-1]]}", file=sys.stderr)
    emit({"benchmark": "train", "machine": machine(), "presets": results}, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
