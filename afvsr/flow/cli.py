"""Evaluate a SPyNet on the validation split of the shared data (``afvsr flow-eval``).

EPE on held-out synthetic pairs, and the PSNR of real frame t+1 warped onto frame t (against
zero flow); JSON on stdout. See ``afvsr.flow.evaluate`` for what the numbers mean.

Examples:
  afvsr flow-eval runs/spynet_cpu/model_best.safetensors
  afvsr flow-eval runs/spynet_cpu/model_best.safetensors --config configs/cpu/spynet_pretrain.toml
  afvsr flow-eval zero              # the zero-flow baseline only

``python -m afvsr.flow.evaluate ...`` is the earlier spelling of the same command.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "model", help="SPyNet (or BasicVSR) model file, or 'zero' for the zero-flow baseline"
    )
    parser.add_argument(
        "--config", help="a flow training config whose [data] makes the synthetic pairs"
    )
    parser.add_argument(
        "--root", help="shared data folder (default: $AFVSR_SHARED_DATA or ../shared/data)"
    )
    parser.add_argument("--scale", type=int, default=4, help="BI downscale of the real LR frames")
    parser.add_argument(
        "--gt-downscale",
        type=int,
        default=1,
        choices=(1, 2),
        help="2: shrink DAVIS x2 before the BI downscale (as configs/cpu/basicvsr.toml)",
    )
    parser.add_argument("--num-synthetic", type=int, default=512, help="held-out synthetic pairs")
    parser.add_argument("--num-real", type=int, default=0, help="real pairs (0 = all)")
    parser.add_argument("--seed", type=int, default=12345, help="seed of the synthetic pairs")
    parser.add_argument("--border", type=int, default=4, help="LR pixels left out of the PSNR")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")


def data_section(config: str | None) -> dict[str, Any]:
    """The ``[data]`` keys of ``afvsr.flow.pairs.DATA_FIELDS`` from a flow training config
    (the config's other keys are the training's business), defaults filled in and checked."""
    # Imported here, as in run(): `afvsr flow-eval --help` does not load torch.
    from afvsr.flow.pairs import DATA_FIELDS, check_data_relations
    from afvsr.schema import check_section, read_config_file

    values: dict[str, Any] = {}
    source = "defaults"
    if config:
        data = read_config_file(config).get("data", {})
        values = (
            {k: v for k, v in data.items() if k in DATA_FIELDS} if isinstance(data, dict) else data
        )
        source = config
    checked = check_section(values, DATA_FIELDS, "data", source)
    check_data_relations(checked)
    return checked


def run(args: argparse.Namespace) -> int:
    # Imported here: `afvsr --help` and the other commands do not load torch for this one.
    import torch

    from afvsr.flow.evaluate import (
        load_flow_model,
        real_val_pairs,
        synthetic_metrics,
        warp_metrics,
        zero_flow,
    )
    from afvsr.flow.pairs import held_out_synthetic

    if args.threads:
        torch.set_num_threads(args.threads)
    data_cfg = data_section(args.config)
    if args.root:
        data_cfg["root"] = args.root
    model = None if args.model == "zero" else load_flow_model(args.model)
    result: dict[str, object] = {
        "model": args.model,
        "scale": args.scale,
        "gt_downscale": args.gt_downscale,
    }
    synthetic = held_out_synthetic(data_cfg, num_pairs=args.num_synthetic, seed=args.seed)
    metrics = synthetic_metrics(model or zero_flow, synthetic)
    if model is None:
        metrics = {"epe_zero_flow": metrics["epe_zero_flow"]}
    result.update(metrics)
    pairs = real_val_pairs(
        data_cfg["root"] or None,
        scale=args.scale,
        num_pairs=args.num_real,
        gt_downscale=args.gt_downscale,
    )
    result["num_synthetic"] = len(synthetic)
    result["num_real"] = len(pairs)
    result.update(warp_metrics(model, pairs, border=args.border))
    print(json.dumps(result, indent=2))
    return 0
