"""Temporal chunks (coverage, look-ahead, scene cuts, joins) and spatial tiles (exact assembly)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from video_helpers import Recurrent, Upsample, pattern

from afvsr.data.shared import shared_data_root
from afvsr.evaluation.metrics import psnr
from afvsr.video.chunking import (
    CUT_THRESHOLD,
    _axis_weights,
    cut_score,
    frame_signature,
    pad_to_min_size,
    temporal_chunks,
    tile_starts,
    upscale_tiled,
)
from afvsr.video.upscale import model_call, upscale_frames


def clip(num_frames: int, h: int = 12, w: int = 16) -> torch.Tensor:
    """``(t, 3, h, w)`` smooth moving pattern."""
    return (
        torch.from_numpy(np.stack([pattern(i, h, w) for i in range(num_frames)]))
        .permute(0, 3, 1, 2)
        .float()
    )


def run_chunked(model, lq: torch.Tensor, *, chunk: int, overlap: int, **kwargs) -> torch.Tensor:
    """Upscale ``lq (t, 3, h, w)`` chunk by chunk the way ``upscale_video`` does."""
    parts = [
        upscale_frames(
            model_call(model),
            part.lq,
            part.keep,
            scale=model.scale,
            tile=None,
            tile_overlap=0,
            amp=contextlib.nullcontext(),
        )
        for part in temporal_chunks(iter(lq), chunk=chunk, overlap=overlap, **kwargs)
    ]
    return torch.cat(parts)


@pytest.mark.parametrize(
    "num_frames,chunk,overlap",
    [(1, 4, 2), (5, 4, 2), (17, 4, 2), (17, 5, 0), (30, 3, 7), (12, 12, 3), (13, 12, 3)],
)
def test_chunks_cover_every_frame_once_with_context(num_frames, chunk, overlap):
    frames = [torch.full((3, 2, 2), float(i)) for i in range(num_frames)]
    kept = []
    for part in temporal_chunks(frames, chunk=chunk, overlap=overlap):
        ids = part.lq[:, 0, 0, 0].long().tolist()
        assert ids == list(range(part.start, part.start + len(ids)))  # contiguous context
        assert part.keep.start == min(overlap, part.first)  # full left context where it exists
        assert len(ids) - part.keep.stop == min(overlap, num_frames - part.stop)
        kept += ids[part.keep]
    assert kept == list(range(num_frames))


def test_chunks_read_ahead_boundedly():
    """Only chunk + cut search + overlap frames are pulled before the first chunk is out."""
    pulled = 0

    def stream():
        nonlocal pulled
        for i in range(60):
            pulled += 1
            yield torch.full((3, 2, 2), float(i))

    chunks = temporal_chunks(stream(), chunk=8, overlap=3)
    first = next(chunks)
    assert pulled == 8 + 8 // 4 + 3
    assert first.keep == slice(0, 8) and len(first.lq) == 11
    longest = max(len(part.lq) for part in chunks)
    assert longest <= 8 + 8 // 4 + 2 * 3


def test_chunk_boundary_moves_to_a_scene_cut():
    a = [torch.from_numpy(pattern(i, 12, 16)).permute(2, 0, 1).float() for i in range(27)]
    b = [
        torch.from_numpy(1 - pattern(i, 12, 16)[::-1] ** 2).permute(2, 0, 1).float()
        for i in range(20)
    ]
    parts = list(temporal_chunks(a + b, chunk=30, overlap=4))
    assert parts[0].stop == 27 and parts[0].at_cut  # 30 - 27 <= 30 // 4
    assert [p.stop for p in temporal_chunks(a, chunk=10, overlap=2)] == [10, 20, 27]


def test_cut_score_separates_shots_from_motion():
    frames = [torch.from_numpy(pattern(2 * i, 24, 32)).permute(2, 0, 1).float() for i in range(6)]
    sigs = [frame_signature(f) for f in frames]
    assert max(cut_score(x, y) for x, y in zip(sigs, sigs[1:], strict=False)) < CUT_THRESHOLD
    other = frame_signature(torch.rand(3, 24, 32) ** 3)
    assert cut_score(sigs[0], other) > CUT_THRESHOLD


def _lr_frames(folder: Path, names: list[str]) -> list[torch.Tensor]:
    frames = []
    for name in names:
        with Image.open(folder / name) as im:
            small = im.convert("RGB").reduce(4)  # a quick LR stand-in (box filter)
        frames.append(torch.from_numpy(np.array(small)).permute(2, 0, 1).float() / 255)
    return frames


def test_cut_score_on_real_footage():
    """No cut inside a fast real shot (BasketballPass); a cut between two DAVIS sequences."""
    root = shared_data_root()
    if root is None or not (root / "basketballpass").is_dir():
        pytest.skip("shared development data (../shared/data) not found")
    shot = _lr_frames(root / "basketballpass", [f"im{i}.png" for i in range(1, 41, 2)])
    sigs = [frame_signature(f) for f in shot]
    assert max(cut_score(a, b) for a, b in zip(sigs, sigs[1:], strict=False)) < CUT_THRESHOLD
    a = _lr_frames(root / "davis2016" / "blackswan", ["00049.jpg"])[0]
    b = _lr_frames(root / "davis2016" / "car-roundabout", ["00000.jpg"])[0]
    assert cut_score(frame_signature(a), frame_signature(b)) > CUT_THRESHOLD


def test_chunked_equals_whole_clip_for_a_model_without_temporal_reach():
    lq = clip(11)
    whole = Upsample()(lq[None])[0]
    for chunk, overlap in [(3, 0), (4, 2), (20, 5)]:
        assert torch.equal(run_chunked(Upsample(), lq, chunk=chunk, overlap=overlap), whole)


def test_chunked_recurrent_model_converges_to_whole_clip_with_overlap():
    """Join error of a stand-in whose output depends on every frame falls with the overlap."""
    lq = torch.rand(24, 3, 6, 8)
    model = Recurrent(decay=0.5)
    whole = model(lq[None])[0]
    scores = [
        psnr(run_chunked(model, lq, chunk=5, overlap=k), whole).mean().item() for k in (0, 2, 8)
    ]
    assert scores[0] < scores[1] < scores[2]
    assert scores[2] > 50  # 0.5**8: below an 8-bit level
    assert scores[0] < 40


def test_tile_starts_cover_with_overlap():
    for length, tile, overlap in [(10, 16, 4), (37, 16, 4), (113, 64, 16), (100, 30, 29)]:
        starts = tile_starts(length, tile, overlap)
        assert starts[0] == 0 and starts[-1] + min(tile, length) == length
        assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:], strict=False))
    with pytest.raises(ValueError, match="tile > tile_overlap"):
        tile_starts(10, 4, 4)


@pytest.mark.parametrize("blend", [False, True])
@pytest.mark.parametrize("scale", [2, 3])
def test_tile_weights_sum_to_one(blend, scale):
    starts = tile_starts(113, 40, 13)
    weights = _axis_weights(starts, 40, 113, scale, blend)
    total = torch.zeros(113 * scale)
    for s, w in zip(starts, weights, strict=True):
        total[scale * s : scale * (s + 40)] += w
    assert torch.allclose(total, torch.ones_like(total))


@pytest.mark.parametrize("blend", [False, True])
def test_tiled_equals_untiled_for_a_local_model(blend):
    lq = clip(3, 29, 37)
    model = Upsample(scale=2)
    whole = model(lq[None])[0]
    tiled = upscale_tiled(
        lambda x: model(x[None])[0], lq, scale=2, tile=12, tile_overlap=4, blend=blend
    )
    assert torch.allclose(tiled, whole, atol=1e-6)


def test_tiles_inside_chunks_keep_only_the_chunk_frames():
    lq = clip(7, 20, 24)
    model = Upsample()
    out = upscale_frames(
        model_call(model),
        lq,
        slice(2, 5),
        scale=4,
        tile=10,
        tile_overlap=4,
        amp=contextlib.nullcontext(),
    )
    assert torch.allclose(out, model(lq[None])[0][2:5], atol=1e-6)


def test_tiny_frames_are_padded_then_cropped():
    lq = torch.rand(2, 3, 3, 5)
    padded, h, w = pad_to_min_size(lq, 16)
    assert padded.shape == (2, 3, 16, 16) and (h, w) == (3, 5)
    assert torch.equal(padded[..., :3, :5], lq)
    out = upscale_frames(
        model_call(Upsample()),
        lq,
        slice(0, 2),
        scale=4,
        tile=None,
        tile_overlap=0,
        amp=contextlib.nullcontext(),
    )
    assert torch.equal(out, Upsample()(lq[None])[0])


def test_default_overlap_costs_under_a_twentieth_of_a_db_with_trained_weights():
    """The shipped BasicVSR on real frames (BasketballPass, BI x4): chunked with the default
    chunk and overlap, against the whole clip in one pass. The cost (PSNR-Y against the ground
    truth, chunked minus whole) must stay under 0.05 dB; benchmarks/bench_chunk_overlap.py
    measures the whole curve."""
    from afvsr.checkpoint import load_model
    from afvsr.imresize import bi_degrade
    from afvsr.video.upscale import default_chunk, default_overlap

    root = shared_data_root()
    if root is None or not (root / "basketballpass").is_dir():
        pytest.skip("shared development data (../shared/data) not found")
    model = load_model("basicvsr-small").eval()
    names = [f"im{i}.png" for i in range(1, 47)]  # 46 frames: two chunks with a join at 30
    gt = []
    for name in names:
        with Image.open(root / "basketballpass" / name) as im:
            gt.append(np.asarray(im.convert("RGB"))[:192, :256])  # LR 64x48: quick on a CPU
    gt = torch.from_numpy(np.stack(gt)).permute(0, 3, 1, 2).float() / 255
    lq = bi_degrade(gt, scale=4)
    overlap = default_overlap(model)
    assert (overlap, default_chunk(overlap)) == (10, 30)
    with torch.inference_mode():
        whole = model(lq[None])[0].clamp(0, 1)
        chunked = run_chunked(model, lq, chunk=default_chunk(overlap), overlap=overlap)
    cost = psnr(whole, gt, y_channel=True).mean() - psnr(chunked, gt, y_channel=True).mean()
    assert abs(cost.item()) < 0.05
    assert psnr(chunked[:20], whole[:20]).min() > 60  # far from the join: the same up to rounding
