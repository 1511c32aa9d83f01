"""Peak memory of `afvsr upscale` on long synthetic videos: it must not grow with the length.

    .venv/bin/python benchmarks/bench_upscale_memory.py [--frames 200 1000] [--size 320x180]
        [--model bicubic | basicvsr:MIDxBLOCKS | NAME|CKPT] [--chunk N --overlap K]

For each length, a synthetic video (a moving pattern with an AAC track, libx264) is written to a
temporary folder, then upscaled x4 in a fresh subprocess through ``afvsr.upscale_video`` (decode,
chunking, model, encode, audio remux), and the subprocess reports its peak RSS
(``getrusage().ru_maxrss``). ``basicvsr:32x5`` builds a random-weight BasicVSR of that size:
memory does not depend on the weights. Prints one JSON object; ``ratio`` is the peak at the
longest length over the peak at the shortest (flat streaming: close to 1).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from report import emit, machine, save

CHILD = r"""
import json, resource, sys, time
import torch
import afvsr
from afvsr.models import BasicVSR

src, dst, model, chunk, overlap, threads = sys.argv[1:7]
torch.set_num_threads(int(threads))
if model.startswith("basicvsr:"):
    mid, blocks = (int(v) for v in model.split(":")[1].split("x"))
    model = BasicVSR(mid_channels=mid, num_blocks=blocks)
start = time.perf_counter()
summary = afvsr.upscale_video(
    src, dst, model=model, quiet=True, force=True,
    chunk=int(chunk) if chunk != "auto" else None,
    overlap=int(overlap) if overlap != "auto" else None,
)
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
print(json.dumps({"frames": summary["frames"], "chunk": summary["chunk"],
                  "overlap": summary["overlap"], "seconds": time.perf_counter() - start,
                  "peak_rss_mb": peak_kb / 1024}))
"""


def make_input(path: Path, num_frames: int, width: int, height: int) -> None:
    """A moving colour pattern with a mono AAC track, written frame by frame."""
    import av
    import numpy as np

    fps = 25
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.options = {"preset": "ultrafast", "crf": "20"}
        audio = out.add_stream("aac", rate=16000, layout="mono")
        for i in range(num_frames):
            r = 0.5 + 0.4 * np.sin(2 * np.pi * (x / 37 + 0.02 * i))
            g = 0.5 + 0.4 * np.cos(2 * np.pi * (y / 23 - 0.03 * i))
            b = 0.5 + 0.4 * np.sin(2 * np.pi * (x + y) / 51)
            rgb = (np.stack([r, g, b], -1) * 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        samples = num_frames * 16000 // fps
        tone = (0.2 * np.sin(np.arange(samples) * 2 * np.pi * 440 / 16000)).astype(np.float32)
        for start in range(0, samples, 1024):
            chunk = np.ascontiguousarray(tone[None, start : start + 1024])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 16000, start, Fraction(1, 16000)
            out.mux(audio.encode(frame))
        out.mux(audio.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--size", default="320x180", help="input WxH (default 320x180)")
    parser.add_argument(
        "--model", default="bicubic", help="bicubic, basicvsr:MIDxBLOCKS, or a name/checkpoint"
    )
    parser.add_argument("--chunk", default="auto")
    parser.add_argument("--overlap", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", help="also write the JSON here")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.frames:
            src, dst = Path(tmp) / f"in_{n}.mkv", Path(tmp) / f"out_{n}.mkv"
            t = time.perf_counter()
            make_input(src, n, width, height)
            made = time.perf_counter() - t
            child = subprocess.run(
                [sys.executable, "-c", CHILD, str(src), str(dst), args.model, args.chunk,
                 args.overlap, str(args.threads)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if child.returncode != 0:
                sys.exit(f"upscaling {n} frames failed:\n{child.stderr}")
            runs[str(n)] = {**json.loads(child.stdout.strip().splitlines()[-1]), "make_s": made}
            dst.unlink()
            src.unlink()
            if args.output and len(runs) < len(args.frames):  # a long run keeps what it measured
                save(report(args, width, height, runs), args.output)
    emit(report(args, width, height, runs), args.output)


def report(args: argparse.Namespace, width: int, height: int, runs: dict) -> dict:
    """The JSON report; ``ratio`` is the peak of the longest finished run over the shortest."""
    peaks = [runs[str(n)]["peak_rss_mb"] for n in args.frames if str(n) in runs]
    return {
        "benchmark": "upscale_memory",
        "model": args.model,
        "input_size": [width, height],
        "scale": 4,
        "threads": args.threads,
        "machine": machine(),
        "runs": runs,
        "ratio": peaks[-1] / peaks[0],
        "complete": len(runs) == len(args.frames),
    }


if __name__ == "__main__":
    main()
