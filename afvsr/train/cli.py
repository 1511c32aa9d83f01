"""Train a model from a config file (TOML or YAML); see docs/training.md.

Examples:
  afvsr train -c configs/cpu/basicvsr.toml
  afvsr train -c configs/cpu/basicvsr.toml --resume          # continue the last checkpoint
  afvsr train -c configs/cpu/basicvsr.toml --set train.iterations=100 --set run.name=try
  afvsr train --resume runs/basicvsr/checkpoints/step_00020000.safetensors
  torchrun --nproc_per_node 4 -m afvsr train -c configs/reds/basicvsr.toml

An interrupted run (Ctrl-C, SIGTERM) finishes its step, saves a checkpoint and the weights so far
(model_last.safetensors) and exits with 130 (SIGINT) or 143 (SIGTERM). Nothing is created before
the config, the data and any checkpoint named have been checked.

The run folder ([run] out_dir / name) receives config.toml (the resolved config), train.log,
metrics.jsonl, tensorboard/, checkpoints/ (last N step_*.safetensors and best.safetensors) and
model_best.safetensors / model_final.safetensors / model_last.safetensors (loadable with
afvsr.load_model).
"""

from __future__ import annotations

import argparse

from afvsr.errors import AfvsrError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "-c",
        "--config",
        metavar="CONFIG",
        help="config file (.toml, .yaml); may be left out with --resume CKPT (uses its config)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="debug logging: also list the trainable layers and each parameter group's lr",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value (TOML syntax, type-checked); repeatable",
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        metavar="CKPT",
        help="continue exactly from CKPT, or (no value) from the run folder's last readable "
        "checkpoint (starting fresh when it has none)",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print every config key of every task (default, type, meaning) and exit",
    )


def run(args: argparse.Namespace) -> int:
    # Imported here: `afvsr --help` and the other commands do not load torch for this one.
    from afvsr.train.config import load_config, resolve_config
    from afvsr.train.loop import train
    from afvsr.train.state import check_meta, read_checkpoint_header

    if args.print_config:
        from afvsr.train.reference import config_reference  # here: as the imports above

        print(config_reference(), end="")
        return 0
    if args.config:
        cfg = load_config(args.config, args.overrides)
        source = args.config
    elif isinstance(args.resume, str):
        meta, _ = read_checkpoint_header(args.resume)
        check_meta(meta, args.resume)
        source = f"{args.resume} (its config)"
        cfg = resolve_config(meta["config"], source, overrides=args.overrides)
    else:
        raise AfvsrError("expected -c CONFIG (or --resume CKPT to continue with its config)")
    return train(cfg, source=source, resume=args.resume, verbose=args.verbose)
