"""The shipped models' recorded figures, and the default model computed from them.

One table, :data:`FIGURES`: per shipped model its validation PSNR-Y (``afvsr eval`` on the
validation split, ``results/validation/*.json``) and its time and memory per frame at 640x272
(``benchmarks/bench_inference.py``, ``results/benchmarks/bench_inference_640x272.json``, on the
CPU kind in :data:`MEASURED_ON`; the time again on an AVX2-only CPU, :data:`MEASURED_ON_AVX2`,
``bench_inference_640x272_avx2.json``). The default of ``afvsr upscale`` is the fastest model whose
PSNR-Y is within :data:`DEFAULT_TOLERANCE_DB` of the best (:func:`default_model`): quality first,
then speed, never a name written down by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_TOLERANCE_DB = 0.1
FIGURE_SIZE = (640, 272)  # LR width x height of the time and memory figures
# Where the time and memory figures come from: one run of benchmarks/bench_inference.py.
MEASURED_ON = {
    "cpu_capability": "AVX512",
    "avx512_bf16": True,
    "amx": False,
    "threads": 1,
    "precision": "fp32",
    "command": "benchmarks/bench_inference.py --frames 6 --size 640x272 --threads 1",
}
# The AVX2 column: the same command (fp32) on a CPU without AVX-512, as most laptops are.
MEASURED_ON_AVX2 = {**MEASURED_ON, "cpu_capability": "AVX2", "avx512_bf16": False}


@dataclass(frozen=True)
class Figures:
    """``psnr_y``: validation PSNR-Y (dB); ``s_per_frame``: seconds per frame at 640x272 (fp32,
    one thread, :data:`MEASURED_ON`); ``mb_per_frame``: memory one more frame of a chunk costs
    at 640x272 (MB); ``s_per_frame_avx2``: seconds per frame on :data:`MEASURED_ON_AVX2`."""

    psnr_y: float
    s_per_frame: float
    mb_per_frame: float
    s_per_frame_avx2: float | None = None


FIGURES: dict[str, Figures] = {
    "basicvsr-small": Figures(psnr_y=36.93, s_per_frame=3.7, mb_per_frame=55, s_per_frame_avx2=6.4),
    "afvsr-single-small": Figures(
        psnr_y=36.92, s_per_frame=8.2, mb_per_frame=73, s_per_frame_avx2=15.7
    ),
    "afvsr-rates135-small": Figures(
        psnr_y=36.90, s_per_frame=8.0, mb_per_frame=74, s_per_frame_avx2=14.3
    ),
    "afvsr-multihead-small": Figures(
        psnr_y=36.91, s_per_frame=14.5, mb_per_frame=73, s_per_frame_avx2=27.6
    ),
    "iconvsr-small": Figures(psnr_y=36.78, s_per_frame=18.9, mb_per_frame=5, s_per_frame_avx2=20.6),
}


def default_model(available: Iterable[str]) -> str | None:
    """The fastest of ``available`` whose PSNR-Y is within ``DEFAULT_TOLERANCE_DB`` of the best
    of them (models without figures are not candidates); None if none has figures."""
    known = [name for name in available if name in FIGURES]
    if not known:
        return None
    best = max(FIGURES[name].psnr_y for name in known)
    close = [n for n in known if FIGURES[n].psnr_y >= best - DEFAULT_TOLERANCE_DB - 1e-9]
    return min(close, key=lambda n: FIGURES[n].s_per_frame)


def _kind(measured: dict) -> str:
    return measured["cpu_capability"] + (" + avx512_bf16" if measured["avx512_bf16"] else "")


def model_table(available: Iterable[str], cpu_capability: str | None = None) -> str:
    """``afvsr upscale --list-models``: one line per model with its figures, the default marked;
    ``cpu_capability`` (torch's, e.g. "AVX2") says which time column is this machine's kind."""
    default = default_model(available)
    w, h = FIGURE_SIZE
    avx512, avx2 = MEASURED_ON["cpu_capability"], MEASURED_ON_AVX2["cpu_capability"]
    lines = [
        f"{'model':<24} {'PSNR-Y (dB)':>11} {'s/frame':>8} {'s/frame':>8} {'MB/frame':>9}",
        f"{'':<24} {'':>11} {avx512:>8} {avx2:>8}",
    ]
    for name in available:
        f = FIGURES.get(name)
        if f is None:
            lines.append(f"{name:<24} {'-':>11} {'-':>8} {'-':>8} {'-':>9}")
            continue
        mark = "  (default)" if name == default else ""
        slow = "-" if f.s_per_frame_avx2 is None else f"{f.s_per_frame_avx2:.1f}"
        lines.append(
            f"{name:<24} {f.psnr_y:>11.2f} {f.s_per_frame:>8.1f} {slow:>8} "
            f"{f.mb_per_frame:>9.0f}{mark}"
        )
    lines.append(
        f"PSNR-Y: validation split (afvsr eval, BI x4). s/frame and MB/frame: {w}x{h} input, "
        f"x4, fp32, {MEASURED_ON['threads']} thread ({MEASURED_ON['command']}), measured on an "
        f"{_kind(MEASURED_ON)} CPU and s/frame again on an {_kind(MEASURED_ON_AVX2)}-only CPU; "
        "MB/frame is what one more frame of a chunk costs."
    )
    if cpu_capability is not None:
        column = (
            f"read the {cpu_capability} column."
            if cpu_capability in (avx512, avx2)
            else "neither column was measured on it."
        )
        lines.append(f"This CPU: {cpu_capability}; {column}")
    return "\n".join(lines)
