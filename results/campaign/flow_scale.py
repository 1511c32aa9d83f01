"""What alignment is worth to a trained model: PSNR-Y with SPyNet's flow multiplied by ``k``.

``k = 1`` is the model as it is, ``k = 0`` propagates without alignment (every warp the
identity); the difference is what the model gets from its flow on that clip set. BI at the
model's scale from the ground-truth frames of a folder dataset, every frame, fp32, as
``afvsr eval`` scores it.

    python results/campaign/flow_scale.py MODEL DATA [--k 0 1] [--threads 1]

prints one JSON line per ``k``: ``{"model", "data", "k", "psnr_y"}``.
"""

from __future__ import annotations

import argparse
import json

import torch

import afvsr
from afvsr.data import open_eval_dataset
from afvsr.evaluation.evaluate import evaluate


def scale_flow(model: torch.nn.Module, flow, k: float) -> None:
    """Make ``model.spynet(ref, supp)`` return ``k`` times ``flow(ref, supp)`` ``(n, 2, h, w)``,
    ``flow`` being SPyNet's own forward."""
    model.spynet.forward = lambda ref, supp: flow(ref, supp) * k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="shipped name or .safetensors of a BasicVSR-family model")
    parser.add_argument("data", help="folder dataset (one clip, or clips in subfolders)")
    parser.add_argument("--k", type=float, nargs="+", default=[0.0, 1.0], help="flow factors")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = afvsr.load_model(args.model)
    flow = model.spynet.forward
    dataset = open_eval_dataset(args.data, scale=model.scale, root=None, lq=None, gt_downscale=1)
    for k in args.k:
        scale_flow(model, flow, k)
        psnr_y = evaluate(model, dataset, precision="fp32")["mean"]["psnr_y"]
        row = {"model": args.model, "data": args.data, "k": k, "psnr_y": round(psnr_y, 3)}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
