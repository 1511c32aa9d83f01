"""Training speed of the CPU presets: iterations/s and peak memory on this machine.

    python benchmarks/bench_train.py                      # every configs/cpu/*.toml
    python benchmarks/bench_train.py configs/cpu/basicvsr.toml --iters 5

Each preset runs in its own process (so its peak RSS is its own) through the real loop
(``afvsr.train.loop.train``): ``--warmup`` steps untimed, then ``--iters`` timed steps, once with
SPyNet frozen (the first ``spynet_freeze_iters`` steps of a run cost less: no backward through
SPyNet) and once with it training, data loading included, no validation or TensorBoard. Stage-2
presets get a random backbone of the right size; ``spynet_checkpoint`` is ignored. Prints one
JSON object: per preset ``it_s_spynet_frozen``, ``it_s_spynet_training``, ``peak_rss_mb``,
the estimated hours for its ``iterations`` and the settings that matter for speed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _phase(cfg_path: Path, out: Path, *, frozen: bool, warmup: int, iters: int) -> float:
    """Iterations/s over ``iters`` steps after ``warmup`` steps of one preset."""
    from afvsr.checkpoint import save_model
    from afvsr.models import build_model
    from afvsr.train.config import load_config
    from afvsr.train.loop import train

    name = "frozen" if frozen else "training"
    overrides = [
        f"run.out_dir={json.dumps(str(out))}",
        f"run.name={name}",
        f"train.iterations={warmup + iters}",
        'train.spynet_checkpoint=""',
        f"train.spynet_freeze_iters={10**9 if frozen else 0}",
        "val.every=0",
        "log.every=1",
        "log.checkpoint_every=0",
        "log.tensorboard=false",
    ]
    cfg = load_config(cfg_path, overrides)
    if cfg["train"]["backbone_checkpoint"]:
        m = cfg["model"]
        backbone = out / "backbone.safetensors"
        kwargs = {k: m[k] for k in ("mid_channels", "num_blocks", "scale")}
        save_model(build_model("basicvsr", **kwargs), backbone)
        cfg = load_config(
            cfg_path, [*overrides, f"train.backbone_checkpoint={json.dumps(str(backbone))}"]
        )
    train(cfg, source=str(cfg_path))
    records = [json.loads(x) for x in (out / name / "metrics.jsonl").read_text().splitlines()]
    timed = [r["it_s"] for r in records if "it_s" in r and r["step"] > warmup]
    return len(timed) / sum(1.0 / s for s in timed)


def run_one(cfg_path: Path, warmup: int, iters: int) -> dict:
    import resource

    import torch

    from afvsr.train.config import load_config

    cfg = load_config(cfg_path, ['train.spynet_checkpoint=""', 'train.backbone_checkpoint=""'])
    with tempfile.TemporaryDirectory() as tmp:
        stage2 = bool(load_config(cfg_path)["train"]["backbone_checkpoint"])
        frozen = _phase(cfg_path, Path(tmp), frozen=True, warmup=warmup, iters=iters)
        # Stage 2 keeps SPyNet frozen for the whole run (unless unfreeze_all).
        training = (
            None
            if stage2
            else _phase(cfg_path, Path(tmp), frozen=False, warmup=warmup, iters=iters)
        )
    t, d = cfg["train"], cfg["data"]
    freeze = 0 if training is None else min(t["spynet_freeze_iters"], t["iterations"])
    seconds = freeze / frozen + (t["iterations"] - freeze) / (training or frozen)
    return {
        "it_s_spynet_frozen": round(frozen, 4),
        "it_s_spynet_training": None if training is None else round(training, 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "iterations": t["iterations"],
        "estimated_hours": round(seconds / 3600, 2),
        "model": cfg["model"],
        "batch_size": t["batch_size"],
        "patch_size": d["patch_size"],
        "samples": d["samples"],
        "num_frames": d["num_frames"] if d["samples"] == "sequence" else None,
        "threads": cfg["run"]["threads"] or torch.get_num_threads(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "configs", nargs="*", type=Path, help="presets (default: configs/cpu/*.toml)"
    )
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=4)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.configs[0], args.warmup, args.iters)))
        return 0
    configs = args.configs or sorted((REPO / "configs" / "cpu").glob("*.toml"))
    results = {}
    from afvsr.train.config import read_config_file

    for path in configs:
        if read_config_file(path).get("run", {}).get("task", "vsr") != "vsr":
            continue  # stage 0 (task "flow") has its own numbers
        cmd = [sys.executable, __file__, str(path), "--one", "--warmup", str(args.warmup),
               "--iters", str(args.iters)]  # fmt: skip
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=os.environ)
        if done.returncode != 0:
            results[str(path)] = {"error": done.stderr.strip().splitlines()[-1:]}
        else:
            results[str(path.relative_to(REPO) if path.is_absolute() else path)] = json.loads(
                done.stdout.strip().splitlines()[-1]
            )
        print(f"{path.name}: {results[list(results)[-1]]}", file=sys.stderr)
    print(json.dumps({"cpu_count": os.cpu_count(), "presets": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
