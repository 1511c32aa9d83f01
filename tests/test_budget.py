"""The memory budget of `afvsr upscale`, the default model, `--list-models`, precision auto."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from video_helpers import Upsample, make_video

import afvsr
from afvsr import shipped
from afvsr.checkpoint import SHIPPED_MODELS
from afvsr.cli import main
from afvsr.errors import AfvsrError
from afvsr.models import AttentionFusionVSR, BasicVSR
from afvsr.video.budget import (
    GIB,
    MIB,
    chunk_memory,
    memory_model,
    parse_size,
    plan_chunks,
    stored_sample_bytes,
)
from afvsr.video.chunking import (
    from_uint16,
    stack_stored,
    temporal_chunks,
    to_compact,
    to_uint16,
    upscale_tiled,
)

SMALL = BasicVSR(mid_channels=32, num_blocks=5)


def test_parse_size():
    assert parse_size("3G") == 3 * GIB and parse_size("512M") == 512 * MIB
    assert parse_size("2.5GiB") == int(2.5 * GIB) and parse_size("1500mb") == 1500 * MIB
    assert parse_size("4096") == 4096
    for bad in ("3Q", "", "-1G", "0"):
        with pytest.raises(AfvsrError, match="expected a memory size"):
            parse_size(bad)


def test_memory_grows_with_chunk_and_frame_size_and_fits_the_plan():
    mm = memory_model(SMALL)
    size = dict(scale=4, overlap=10, tile=None, tile_overlap=16)
    small = chunk_memory(mm, width=320, height=180, chunk=10, **size)
    assert chunk_memory(mm, width=320, height=180, chunk=40, **size) > small
    assert chunk_memory(mm, width=640, height=360, chunk=10, **size) > 2 * small
    for budget in (1 * GIB, 3 * GIB, 8 * GIB):
        plan = plan_chunks(mm, width=854, height=480, scale=4, overlap=10, budget=budget, base=0)
        assert plan.estimate <= budget and plan.chunk >= 1
    # A generous budget: whole frames and the longest chunk; a tight one: tiles.
    roomy = plan_chunks(mm, width=320, height=180, scale=4, overlap=10, budget=64 * GIB, base=0)
    assert roomy.tile is None and roomy.chunk == 40
    tight = plan_chunks(mm, width=1280, height=720, scale=4, overlap=10, budget=3 * GIB, base=0)
    assert tight.tile is not None


def test_fusion_model_costs_at_most_twice_basicvsr_per_frame():
    fusion = AttentionFusionVSR(mid_channels=32, num_blocks=5, rates=(1, 2, 3), num_heads=4)
    assert memory_model(fusion).per_frame <= 3 * memory_model(SMALL).per_frame  # 3 distinct rates


def test_explicit_chunk_that_cannot_fit_is_an_error_saying_what_fits():
    mm = memory_model(SMALL)
    size = dict(width=640, height=360, scale=4, overlap=10, base=0)
    with pytest.raises(AfvsrError, match=r"--chunk 500 needs about .* GiB.*--chunk \d+.* fits"):
        plan_chunks(mm, budget=2 * GIB, chunk=500, **size)
    with pytest.raises(AfvsrError, match="raise --max-memory"):
        plan_chunks(mm, budget=10 * MIB, **size)
    # An explicit chunk that fits is kept (tiles chosen if needed).
    assert plan_chunks(mm, budget=4 * GIB, chunk=7, **size).chunk == 7


def test_uint16_frames_and_8bit_tiles_are_exact():
    frames = torch.randint(0, 256, (4, 3, 23, 31)).float() / 255
    assert torch.equal(from_uint16(to_uint16(frames)), frames)
    fn = lambda x: torch.nn.functional.interpolate(x * 1.1 - 0.05, scale_factor=2)  # noqa: E731
    whole = fn(frames).clamp(0, 1).mul(255).round().to(torch.uint8)
    tiled = upscale_tiled(fn, frames, scale=2, tile=12, tile_overlap=4, dtype=torch.uint8)
    assert tiled.dtype == torch.uint8 and torch.equal(tiled, whole)


def test_8bit_frames_are_held_as_exact_uint8_and_deeper_ones_as_uint16():
    frame = torch.randint(0, 256, (3, 23, 31)).float() / 255  # as decoded from 8-bit samples
    deep_frame = torch.randint(0, 65536, (3, 23, 31)).float() / 65535  # ... from 16-bit ones
    deep_frame[0, 0, 0] = 1 / 65535  # no 8-bit value
    small, deep = to_compact(frame), to_compact(deep_frame)
    assert small.dtype == torch.uint8 and torch.equal(from_uint16(small), frame)
    assert deep.dtype == torch.uint16 and torch.equal(from_uint16(deep), deep_frame)
    mixed = stack_stored([small, deep])  # uint8 v -> uint16 257 v: the same value
    assert mixed.dtype == torch.uint16 and torch.equal(from_uint16(mixed[0]), frame)
    assert torch.equal(from_uint16(mixed[1]), deep_frame)
    assert stored_sample_bytes("yuv420p") == 1 and stored_sample_bytes("rgb24") == 1
    assert stored_sample_bytes("yuv420p10le") == 2 and stored_sample_bytes("no-such-format") == 2
    # Chunks of 8-bit frames held as uint8, the kept ones views of the last stack: same values.
    clip = torch.randint(0, 256, (9, 3, 5, 7)).float() / 255
    parts = list(temporal_chunks(iter(clip), chunk=3, overlap=2, cut_search=0, store=to_compact))
    assert [p.lq.dtype for p in parts] == [torch.uint8] * 3
    for p in parts:
        assert torch.equal(from_uint16(p.lq), clip[p.start : p.start + len(p.lq)])


@pytest.mark.parametrize("name", [*SHIPPED_MODELS, "bicubic"])
def test_every_shipped_model_fits_1080p_input_in_the_default_budget(name):
    """1920x1080 8-bit input, x4, the default 4 GiB with 400 MiB in use at start (a loaded model
    and the reader: 260-350 MiB measured): the planner finds a chunk/tile split within budget,
    with the model's own overlap (the estimator only; no model run)."""
    from afvsr.checkpoint import load_upscaler
    from afvsr.video.upscale import default_overlap

    net = load_upscaler(name, map_location="cpu", scale=4)
    plan = plan_chunks(
        memory_model(net), width=1920, height=1080, scale=4, overlap=default_overlap(net),
        budget=4 * GIB, base=400 * MIB, sample_bytes=stored_sample_bytes("yuv420p"),
    )  # fmt: skip
    assert 1 <= plan.chunk and plan.estimate <= plan.budget == 4 * GIB


def test_upscale_reports_split_precision_and_peak_memory(tmp_path, capsys):
    src = make_video(tmp_path / "in.mkv", num_frames=5, audio=False)
    summary = afvsr.upscale_video(src, tmp_path / "out", model=Upsample(), quiet=True)
    assert summary["precision"] in ("fp32", "bf16") and summary["tile"] is None
    assert 0 < summary["memory_estimate"] <= summary["max_memory"] <= 4 * GIB
    assert summary["peak_memory"] > 0
    out = tmp_path / "out.mkv"
    args = ["upscale", str(src), "-o", str(out), "--model", "bicubic", "--quiet"]
    assert main([*args, "--max-memory", "2G", "--precision", "fp32"]) == 0
    line = capsys.readouterr().out
    assert (
        "(fp32)" in line and "chunk 30" in line and "peak memory" in line and "of 2.0 GiB" in line
    )
    assert main([*args, "--force", "--max-memory", "1K"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("afvsr: error: ") and "--max-memory budget" in err and err.count("\n") == 1
    )


def test_forced_tiles_give_the_same_frames(tmp_path):
    src = make_video(tmp_path / "in.mkv", num_frames=3, audio=False)  # 37x29
    afvsr.upscale_video(src, tmp_path / "whole", model=Upsample(), quiet=True)
    s = afvsr.upscale_video(
        src, tmp_path / "tiles", model=Upsample(), tile=16, tile_overlap=4, quiet=True
    )
    assert s["tile"] == 16
    for name in ("000000.png", "000002.png"):
        a, b = (np.asarray(Image.open(tmp_path / d / name)) for d in ("whole", "tiles"))
        assert np.array_equal(a, b)


def test_default_model_is_the_fastest_within_a_tenth_of_a_db(monkeypatch):
    figures = {
        "best": shipped.Figures(psnr_y=35.72, s_per_frame=30.0, mb_per_frame=70),
        "close-fast": shipped.Figures(psnr_y=35.65, s_per_frame=9.0, mb_per_frame=50),
        "far-faster": shipped.Figures(psnr_y=35.50, s_per_frame=1.0, mb_per_frame=40),
    }
    monkeypatch.setattr(shipped, "FIGURES", figures)
    assert shipped.default_model(["best", "close-fast", "far-faster"]) == "close-fast"
    assert shipped.default_model(["best", "far-faster"]) == "best"
    assert shipped.default_model(["unknown"]) is None


def test_shipped_default_is_basicvsr_small_and_list_models_prints_every_model(capsys):
    from afvsr.checkpoint import available_models, default_model_name

    names = available_models()[:-1]
    assert set(names) <= set(shipped.FIGURES)
    if "basicvsr-small" in names:
        assert default_model_name() == "basicvsr-small"
    assert main(["upscale", "--list-models"]) == 0
    out = capsys.readouterr().out
    for name in names:
        line = next(line for line in out.splitlines() if line.startswith(name))
        assert f"{shipped.FIGURES[name].psnr_y:.2f}" in line
    assert "AVX512" in out and "(default)" in out
    assert shipped.model_table(names, "AVX2").endswith("This CPU: AVX2; read the AVX2 column.")
    assert "neither column" in shipped.model_table(names, "DEFAULT")


def test_figures_are_the_recorded_measurements():
    """FIGURES equal the benchmark and evaluation files they were read from, rounded."""
    repo = Path(__file__).resolve().parents[1]
    bench = repo / "results" / "benchmarks"
    times = {}
    for column, measured, file in (
        ("avx512", shipped.MEASURED_ON, "bench_inference_640x272.json"),
        ("avx2", shipped.MEASURED_ON_AVX2, "bench_inference_640x272_avx2.json"),
    ):
        report = json.loads((bench / file).read_text())
        assert report["cpu_kind"]["capability"] == measured["cpu_capability"]
        assert report["cpu_kind"]["avx512_bf16"] == measured["avx512_bf16"]
        for row in report["results"]:
            if row["precision"] == "fp32":
                times[column, row["model"]] = (row["ms_per_frame"] / 1000, row["mb_per_frame"])
    validation = {
        "basicvsr-small": "basicvsr",
        "iconvsr-small": "iconvsr",
        "afvsr-single-small": "fusion_single",
        "afvsr-multihead-small": "fusion_multihead",
        "afvsr-rates135-small": "fusion_rates135",
    }
    assert set(validation) == set(shipped.FIGURES)
    for name, figures in shipped.FIGURES.items():
        seconds, mb = times["avx512", name]
        assert figures.s_per_frame == round(seconds, 1) and figures.mb_per_frame == round(mb)
        assert figures.s_per_frame_avx2 == round(times["avx2", name][0], 1)
        result = json.loads(
            (repo / "results" / "validation" / f"{validation[name]}.json").read_text()
        )
        assert figures.psnr_y == round(result["mean"]["psnr_y"], 2), name


def test_bf16_is_within_five_hundredths_of_a_db_of_fp32_for_every_shipped_model():
    """Real frames (BasketballPass, 6 frames, a 256x192 crop, BI x4): auto's bf16 against fp32,
    PSNR-Y against the ground truth, for every shipped model as `afvsr upscale` runs it. Where the
    CPU has no native bf16 (auto never picks it there) torch runs bf16 convs in its slow
    reference kernels, about 100x fp32 (16 minutes for the five models on an AVX2 CPU): there
    the default model only, on a 128x96 crop."""
    from afvsr.checkpoint import available_models, default_model_name, load_model
    from afvsr.data.shared import shared_data_root
    from afvsr.evaluation.metrics import psnr
    from afvsr.imresize import bi_degrade
    from afvsr.inference import cpu_has_native_bf16, run_model

    root = shared_data_root()
    if root is None or not (root / "basketballpass").is_dir():
        pytest.skip("shared development data (../shared/data) not found")
    native = cpu_has_native_bf16()
    h, w = (192, 256) if native else (96, 128)
    gt = []
    for i in range(1, 7):
        with Image.open(root / "basketballpass" / f"im{i}.png") as im:
            gt.append(np.asarray(im.convert("RGB"))[:h, :w])
    gt = torch.from_numpy(np.stack(gt)).permute(0, 3, 1, 2).float() / 255
    lq = bi_degrade(gt, scale=4)[None]  # (1, 6, 3, h/4, w/4)
    names = available_models()[:-1] if native else [default_model_name()]
    for name in names:
        model = load_model(name)
        kwargs = {"mode": "sequence"} if isinstance(model, AttentionFusionVSR) else {}
        scores = {
            p: psnr(run_model(model, lq, precision=p, **kwargs)[0].clamp(0, 1), gt, y_channel=True)
            .mean()
            .item()
            for p in ("fp32", "bf16")
        }
        assert abs(scores["bf16"] - scores["fp32"]) < 0.05, (name, scores)
