"""onnxruntime against PyTorch on the same model and clip: ms per output frame. Prints JSON.

    .venv/bin/python benchmarks/bench_onnx.py [--model basicvsr] [--frames 10] [--size 160x90]

The model (full size by default, x4, random weights: speed does not depend on them) is exported
with ``afvsr.export.export_onnx`` for a chunk of ``--frames`` frames, then both backends upscale
the same clip: PyTorch the way ``afvsr upscale`` runs it (``afvsr.inference``: eval mode,
channels-last, inference mode, fp32), onnxruntime through ``afvsr.video.onnx_backend.OnnxModel``
(CPU provider). Both use the same number of threads. Each backend gets one untimed warm-up call
on the clip (weight packing, first-call allocations); then the timed calls alternate between the
backends (so a change in the machine's load hits both alike) and the best of ``--repeats`` counts.
The JSON also gives the export and session-creation times and the largest output difference.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from report import emit, machine

from afvsr.export import export_onnx
from afvsr.models import build_model

MODELS = {"basicvsr": ("basicvsr", {}), "afvsr": ("afvsr", {})}


def seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="basicvsr", choices=sorted(MODELS))
    parser.add_argument("--frames", type=int, default=10, help="frames per chunk (the export's N)")
    parser.add_argument("--size", default="160x90", help="LR width x height (default: 160x90)")
    parser.add_argument("--mid-channels", type=int, default=64)
    parser.add_argument("--num-blocks", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per backend")
    parser.add_argument("--threads", type=int, help="threads for both backends (default: torch's)")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    from afvsr.inference import prepare_for_inference, run_model
    from afvsr.video.onnx_backend import OnnxModel

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    w, h = (int(v) for v in args.size.lower().split("x"))
    family, extra = MODELS[args.model]
    torch.manual_seed(0)
    model = build_model(
        family, mid_channels=args.mid_channels, num_blocks=args.num_blocks, **extra
    ).eval()
    lq = torch.rand(1, args.frames, 3, h, w)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        start = time.perf_counter()
        export_onnx(model, path, num_frames=args.frames)
        export_s = time.perf_counter() - start
        onnx_mb = path.stat().st_size / 1e6
        start = time.perf_counter()
        net = OnnxModel(path, device="cpu", threads=threads)
        session_s = time.perf_counter() - start
        print(f"exported in {export_s:.1f} s, session in {session_s:.1f} s", file=sys.stderr)
        fwd = {"mode": "sequence"} if family == "afvsr" else {}
        model = prepare_for_inference(model, device="cpu", precision="fp32")
        with torch.inference_mode():
            ort_out = net(lq)  # warm-up
        torch_out = run_model(model, lq, **fwd)  # warm-up
        ort_times, torch_times = [], []
        for _ in range(args.repeats):
            with torch.inference_mode():
                ort_times.append(seconds(lambda: net(lq)))
            torch_times.append(seconds(lambda: run_model(model, lq, **fwd)))
            print(
                f"onnxruntime {1000 * ort_times[-1] / args.frames:.0f} ms/frame, "
                f"pytorch {1000 * torch_times[-1] / args.frames:.0f} ms/frame",
                file=sys.stderr,
            )
    ort_s, torch_s = min(ort_times), min(torch_times)

    result = {
        "machine": machine() | {"onnxruntime": __import__("onnxruntime").__version__},
        "model": args.model,
        "mid_channels": args.mid_channels,
        "num_blocks": args.num_blocks,
        "frames": args.frames,
        "size": args.size,
        "repeats": args.repeats,
        "pytorch_ms_per_frame": 1000 * torch_s / args.frames,
        "onnxruntime_ms_per_frame": 1000 * ort_s / args.frames,
        "onnxruntime_speedup": torch_s / ort_s,
        "max_abs_diff": (ort_out - torch_out).abs().max().item(),
        "export_seconds": export_s,
        "session_seconds": session_s,
        "onnx_mb": onnx_mb,
    }
    emit(result, args.output)


if __name__ == "__main__":
    main()
