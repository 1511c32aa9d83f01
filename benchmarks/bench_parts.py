"""Where a BasicVSR's time goes: SPyNet flow, propagation, reconstruction, in one run.

    .venv/bin/python benchmarks/bench_parts.py [--model basicvsr-small] [--size 104x60]
        [--frames 20] [--repeats 3] [--threads 1] [--output FILE.json]
        [--num-blocks N] [--flow-mode one-way]

The model (a shipped name or a BasicVSR checkpoint), prepared as ``afvsr upscale`` runs it
(``prepare_for_inference``: channels-last weights), runs in fp32 inference mode on random LR
frames ``(1, frames, 3, h, w)`` (speed does not depend on the content). Three timings, each the
best of ``--repeats``: the flows alone (``compute_flows``), flows + propagation
(``model.propagate``) and the whole forward; propagation and reconstruction are the differences.
Reported: ms per frame of the whole model, each part's share of the time, and each part's share
of the FLOPs (``afvsr.flops``), so a cheaper part can be priced before it is trained. The default
size is BasketballPass's LR frame.

``--num-blocks`` / ``--flow-mode`` price a variant of the model's shape (random weights: speed does
not depend on them): the model and the variant are timed in the same run, alternately, and the
report adds the variant's figures and ``time_ratio`` (variant / model, whole forward).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from report import emit, machine

import afvsr
from afvsr.flops import count_flops
from afvsr.inference import prepare_for_inference
from afvsr.models import BasicVSR
from afvsr.models.basicvsr import FLOW_MODES, compute_flows


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` calls of ``fn``, in seconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def parts(model: BasicVSR, lq: torch.Tensor, repeats: int) -> dict[str, float]:
    """Seconds of the flows, the propagation and the reconstruction of ``model(lq)``,
    ``lq (1, t, 3, h, w)``."""
    with torch.inference_mode():
        flow = best_of(lambda: compute_flows(model.spynet, lq, one_way=model.one_way), repeats)
        propagate = best_of(lambda: model.propagate(lq), repeats)
        whole = best_of(lambda: model(lq), repeats)
    return {
        "flow": flow,
        "propagation": max(propagate - flow, 0.0),
        "reconstruction": max(whole - propagate, 0.0),
        "whole": whole,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="basicvsr-small", help="shipped name or checkpoint")
    parser.add_argument("--size", default="104x60", help="LR width x height")
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", help="also write the JSON here")
    parser.add_argument("--num-blocks", type=int, help="price a variant with N blocks per branch")
    parser.add_argument("--flow-mode", choices=FLOW_MODES, help="price a variant with this flow")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    model = afvsr.load_model(args.model).float()
    if not isinstance(model, BasicVSR):
        parser.error(f"expected a BasicVSR model, got {type(model).__name__}")
    lq = torch.rand(1, args.frames, 3, h, w)
    report = {"benchmark": "parts", "machine": machine(), "model": args.model, "lr_size": [w, h]}
    changes = {"num_blocks": args.num_blocks, "flow_mode": args.flow_mode}
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        emit({**report, **figures(model, lq, args.repeats)}, args.output)
        return
    variant = BasicVSR(**{**model.kwargs, **changes})
    # Alternate the two (best of each over all rounds), so a load that comes and goes on a shared
    # machine is seen by both.
    rounds = [
        (figures(model, lq, args.repeats), figures(variant, lq, args.repeats)) for _ in range(2)
    ]
    base = min((r[0] for r in rounds), key=lambda f: f["ms_per_frame"])
    other = min((r[1] for r in rounds), key=lambda f: f["ms_per_frame"])
    emit(
        {
            **report,
            **base,
            "variant": {"changes": changes, **other},
            "time_ratio": other["ms_per_frame"] / base["ms_per_frame"],
        },
        args.output,
    )


def figures(model: BasicVSR, lq: torch.Tensor, repeats: int) -> dict:
    """ms per frame, the parts' shares of the time and of the FLOPs, GFLOP per frame of
    ``model`` (fp32, channels-last, as ``afvsr upscale`` runs it) on ``lq (1, t, 3, h, w)``."""
    model = prepare_for_inference(model, precision="fp32")
    seconds = parts(model, lq, repeats)
    flops = count_flops(model, tuple(lq.shape))
    flop_parts = {k: flops.get(k, 0.0) for k in ("spynet", "propagation", "reconstruction")}
    return {
        "frames": lq.shape[1],
        "ms_per_frame": 1000 * seconds["whole"] / lq.shape[1],
        "time_share": {
            k: seconds[k] / seconds["whole"] for k in ("flow", "propagation", "reconstruction")
        },
        "flop_share": {k: v / flops["total"] for k, v in flop_parts.items()},
        "gflop_per_frame": flops["per_frame"] / 1e9,
    }


if __name__ == "__main__":
    main()
