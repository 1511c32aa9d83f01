"""Peak memory of `afvsr upscale` against its memory budget, and its flatness over the length.

    .venv/bin/python benchmarks/bench_upscale_memory.py [--frames 150] [--sizes 854x480 1280x720]
        [--models NAME ...] [--extra] [--max-memory SIZE] [--threads 2] [--output FILE.json]

For every model (default: every shipped one) and input size, a synthetic video (a moving pattern
with an AAC track, libx264) is written to a temporary folder and upscaled x4 with default
settings (chunk and tiles chosen from the budget, precision auto) in a fresh subprocess through
``afvsr.upscale_video`` (decode, chunking, model, encode, audio remux). The subprocess reports the
summary's chunk, tile, budget and estimate, and its peak RSS during the run (``VmHWM``, reset
when the run starts) and over its life (``ru_maxrss``). ``--extra`` adds the issue's two extra
cases for the default model: ``--max-memory 3G`` at 1280x720, and 1920x1080 input at the
default budget (tiles). Every case passes when its peak is at most 1.1 x its budget. With
several ``--frames``, ``ratio`` per case is the peak of the longest over the shortest (flat
streaming: close to 1). ``basicvsr:32x5`` builds a random-weight BasicVSR of that size (memory
does not depend on the weights).
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

src, dst, model, max_memory, threads = sys.argv[1:6]
torch.set_num_threads(int(threads))
if model.startswith("basicvsr:"):
    mid, blocks = (int(v) for v in model.split(":")[1].split("x"))
    model = BasicVSR(mid_channels=mid, num_blocks=blocks)
start = time.perf_counter()
summary = afvsr.upscale_video(
    src, dst, model=model, quiet=True, force=True,
    max_memory=None if max_memory == "default" else max_memory,
)
keys = ("frames", "chunk", "overlap", "tile", "chunks", "precision", "model", "max_memory",
        "memory_estimate", "peak_memory")
print(json.dumps({**{k: summary[k] for k in keys}, "seconds": time.perf_counter() - start,
                  "lifetime_peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
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


def run_case(tmp: str, model: str, size: str, frames: int, max_memory: str, threads: int) -> dict:
    width, height = (int(v) for v in size.lower().split("x"))
    src, dst = Path(tmp) / f"in_{size}_{frames}.mkv", Path(tmp) / "out.mkv"
    t = time.perf_counter()
    make_input(src, frames, width, height)
    made = time.perf_counter() - t
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(src), str(dst), model, max_memory, str(threads)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    dst.unlink(missing_ok=True)
    src.unlink()
    if child.returncode != 0:
        return {"error": child.stderr.strip().splitlines()[-1] if child.stderr.strip() else "?"}
    run = json.loads(child.stdout.strip().splitlines()[-1])
    run["make_s"] = made
    run["peak_over_budget"] = run["peak_memory"] / run["max_memory"]
    run["ok"] = run["peak_over_budget"] <= 1.1
    return run


def main() -> None:
    from afvsr.checkpoint import available_models, default_model_name

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[150])
    parser.add_argument("--sizes", nargs="+", default=["854x480", "1280x720"])
    parser.add_argument("--models", nargs="+", help="default: every shipped model")
    parser.add_argument("--max-memory", default="default", help="budget (default: afvsr's)")
    parser.add_argument("--extra", action="store_true", help="add the 3G and 1920x1080 cases")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", help="also write the JSON here")
    args = parser.parse_args()
    models = args.models or available_models()[:-1]
    cases = [(m, size, args.max_memory) for m in models for size in args.sizes]
    if args.extra:
        default = default_model_name()
        cases += [(default, "1280x720", "3G"), (default, "1920x1080", "default")]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for model, size, budget in cases:
            case = {"model": model, "size": size, "max_memory_arg": budget, "runs": {}}
            runs.append(case)
            for n in args.frames:
                case["runs"][str(n)] = run_case(tmp, model, size, n, budget, args.threads)
                print(json.dumps({**case, "frames": n}), file=sys.stderr)
                if args.output:  # a long run keeps what it measured
                    save(report(args, runs), args.output)
    emit(report(args, runs), args.output)


def report(args: argparse.Namespace, cases: list[dict]) -> dict:
    """The JSON report: every case, its ratio over lengths, and whether all stayed in budget."""
    for case in cases:
        peaks = [r["peak_memory"] for r in case["runs"].values() if "peak_memory" in r]
        case["ratio"] = peaks[-1] / peaks[0] if len(peaks) > 1 else None
    done = [r for c in cases for r in c["runs"].values()]
    return {
        "benchmark": "upscale_memory",
        "scale": 4,
        "threads": args.threads,
        "frames": args.frames,
        "machine": machine(),
        "cases": cases,
        "all_within_budget": all(r.get("ok", False) for r in done),
    }


if __name__ == "__main__":
    main()
