"""Training samples: reproducible, one crop for all frames, lq/gt augmented alike, group indices.

The test clips are "coded": pixel (y, x) of frame f holds R = 2y, G = 2x, B = 10 f, so a patch says
where it was cut from and which frame it is.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from _data_trees import as_tensor, coded_frames, random_frames, write_clip
from torch.utils.data import DataLoader

from afvsr.data import FrameFolders, RateGroupSamples, SequenceSamples, group_indices, mirror_index
from afvsr.errors import AfvsrError


@pytest.fixture
def coded(tmp_path) -> FrameFolders:
    write_clip(tmp_path / "a", coded_frames(9, 48, 64))
    write_clip(tmp_path / "b", coded_frames(6, 40, 44))
    return FrameFolders(tmp_path, scale=4)


def _dihedral(x: torch.Tensor, hflip: bool, vflip: bool, transpose: bool) -> torch.Tensor:
    if hflip:
        x = x.flip(-1)
    if vflip:
        x = x.flip(-2)
    return x.transpose(-2, -1) if transpose else x


def _undo(x: torch.Tensor, hflip: bool, vflip: bool, transpose: bool) -> torch.Tensor:
    if transpose:
        x = x.transpose(-2, -1)
    if vflip:
        x = x.flip(-2)
    return x.flip(-1) if hflip else x


def _find_origin(gt: torch.Tensor) -> tuple[tuple[bool, bool, bool], int, int]:
    """Which flips/transpose turn this coded GT patch back upright, and its top-left corner."""
    for ops in itertools.product([False, True], repeat=3):
        g = _undo(gt, *ops)
        codes = (g[..., :2, :, :] * 255).round() / 2
        rows, cols = codes[..., 0, :, 0], codes[..., 1, 0, :]
        if (rows.diff(dim=-1) == 1).all() and (cols.diff(dim=-1) == 1).all():
            return ops, int(rows.flatten()[0]), int(cols.flatten()[0])
    raise AssertionError("patch is not a flipped/transposed crop")


def test_mirror_and_group_indices_by_hand():
    assert [mirror_index(i, 5) for i in range(-5, 10)] == [
        3,
        4,
        3,
        2,
        1,
        0,
        1,
        2,
        3,
        4,
        3,
        2,
        1,
        0,
        1,
    ]
    assert mirror_index(7, 1) == 0
    assert group_indices(0, 10, rates=(1, 2, 3), window=5) == [
        [2, 1, 0, 1, 2],
        [4, 2, 0, 2, 4],
        [6, 3, 0, 3, 6],
    ]
    assert group_indices(9, 10, rates=(1, 3, 5), window=3) == [[8, 9, 8], [6, 9, 6], [4, 9, 4]]
    assert group_indices(5, 10, rates=(2,), window=5) == [[1, 3, 5, 7, 9]]


def test_group_indices_match_the_model():
    net = pytest.importorskip("afvsr.models.afvsr_net", reason="models not available")
    for t, n, rates, window in [(0, 10, (1, 2, 3), 5), (9, 10, (1, 3, 5), 3), (4, 7, (2, 3), 7)]:
        ours = group_indices(t, n, rates=rates, window=window)
        assert ours == net.group_indices(t, n, rates=rates, window=window)


def test_sequence_samples_same_crop_consecutive_frames(coded):
    ds = SequenceSamples(coded, num_frames=4, patch_size=6, augment=False, seed=7)
    assert len(ds) == 9 + 6
    for index in (0, 8, 9, 14):
        sample = ds[index]
        lq, gt = sample["lq"], sample["gt"]
        assert lq.shape == (4, 3, 6, 6) and gt.shape == (4, 3, 24, 24)
        ops, top, left = _find_origin(gt)
        assert ops == (False, False, False) and top % 4 == 0 and left % 4 == 0
        for f in range(4):  # the same crop in every frame
            torch.testing.assert_close(gt[f, :2], gt[0, :2], rtol=0, atol=0)
        first = int((gt[0, 2, 0, 0] * 255).round()) // 10
        assert [int((gt[f, 2, 0, 0] * 255).round()) for f in range(4)] == [
            10 * (first + f) for f in range(4)
        ]
        clip = 0 if index < 9 else 1
        assert sample["key"] == f"{'ab'[clip]}/{first}"
        # The LR patch equals that crop of the whole LR frames (BI made from the whole frames).
        whole = coded.load(clip, start=first, stop=first + 4)
        y, x = top // 4, left // 4
        torch.testing.assert_close(lq, whole["lq"][..., y : y + 6, x : x + 6], rtol=0, atol=1e-6)
        torch.testing.assert_close(gt, whole["gt"][..., top : top + 24, left : left + 24])


def test_augmentation_applies_alike_to_lq_and_gt(coded):
    ds = SequenceSamples(coded, num_frames=3, patch_size=5, augment=True, seed=1)
    seen = set()
    for index in range(15):
        sample = ds[index]
        ops, top, left = _find_origin(sample["gt"])
        frames = [int((sample["gt"][f, 2, 0, 0] * 255).round()) // 10 for f in range(3)]
        reverse = frames[0] > frames[-1]
        seen.add((*ops, reverse))
        first = min(frames)
        clip = 0 if index < 9 else 1
        whole = coded.load(clip, start=first, stop=first + 3)
        lq = _undo(sample["lq"], *ops).flip(0) if reverse else _undo(sample["lq"], *ops)
        y, x = top // 4, left // 4
        torch.testing.assert_close(lq, whole["lq"][..., y : y + 5, x : x + 5], rtol=0, atol=1e-6)
    assert len(seen) >= 6  # flips, transposes and reversals all happen


def test_reproducible_with_seed_epoch_and_workers(coded):
    ds = SequenceSamples(coded, num_frames=3, patch_size=4, seed=3)
    again = SequenceSamples(coded, num_frames=3, patch_size=4, seed=3)
    other = SequenceSamples(coded, num_frames=3, patch_size=4, seed=4)
    torch.testing.assert_close(ds[5]["lq"], again[5]["lq"], rtol=0, atol=0)
    assert any(not torch.equal(ds[i]["gt"], other[i]["gt"]) for i in range(5))
    torch.manual_seed(0)  # global state plays no part
    first = [ds[i]["gt"] for i in range(6)]
    ds.set_epoch(1)
    assert any(not torch.equal(ds[i]["gt"], first[i]) for i in range(6))
    ds.set_epoch(0)
    loader = DataLoader(ds, batch_size=2, num_workers=2, shuffle=False)
    batched = torch.cat([batch["gt"] for batch in itertools.islice(loader, 3)])
    torch.testing.assert_close(batched, torch.stack(first), rtol=0, atol=0)


def _frame_ids(gt: torch.Tensor) -> list[int]:
    return [int((gt[f, 2, 0, 0] * 255).round()) // 10 for f in range(gt.shape[0])]


def test_interval_list_draws_strided_windows(coded):
    plain = SequenceSamples(coded, num_frames=3, patch_size=4, seed=2)
    ones = SequenceSamples(coded, num_frames=3, patch_size=4, interval_list=[1], seed=2)
    mixed = SequenceSamples(coded, num_frames=3, patch_size=4, interval_list=[1, 2], seed=2)
    seen = set()
    for epoch in range(4):
        for ds in (plain, ones, mixed):
            ds.set_epoch(epoch)
        for index in range(15):
            # A list of one interval draws exactly what a sampler without the key draws.
            torch.testing.assert_close(ones[index]["gt"], plain[index]["gt"], rtol=0, atol=0)
            frames = sorted(_frame_ids(mixed[index]["gt"]))
            step = frames[1] - frames[0]
            assert frames == [frames[0] + step * k for k in range(3)] and step in (1, 2)
            assert frames[-1] < (9 if index < 9 else 6)
            seen.add(step)
    assert seen == {1, 2}  # both intervals happen
    # Clip "b" has 6 frames: 3 frames at interval 3 span 7.
    with pytest.raises(
        AfvsrError, match="clip b has 6 frames, fewer than num_frames 3 at interval"
    ):
        SequenceSamples(coded, num_frames=3, patch_size=4, interval_list=[1, 3, 2])
    for bad in ([], [0], [1, 2.0], [True], 2):
        with pytest.raises(ValueError, match="non-empty list of positive integers"):
            SequenceSamples(coded, num_frames=2, patch_size=4, interval_list=bad)


def test_rate_group_samples(coded):
    ds = RateGroupSamples(coded, rates=(1, 2), window=5, patch_size=4, augment=False, seed=0)
    assert len(ds) == 15
    for index, (clip, t, n) in {3: (0, 3, 9), 9: (1, 0, 6), 14: (1, 5, 6)}.items():
        sample = ds[index]
        lq, gt = sample["lq"], sample["gt"]
        assert lq.shape == (2, 5, 3, 4, 4) and gt.shape == (3, 16, 16)
        assert sample["key"] == f"{'ab'[clip]}/{t}"
        assert int((gt[2, 0, 0] * 255).round()) == 10 * t
        # Frame identity of each LR patch (B channel; BI keeps a constant channel constant).
        got = (lq[:, :, 2, 0, 0] * 255 / 10).round().int().tolist()
        assert got == group_indices(t, n, rates=(1, 2), window=5)
        _, top, left = _find_origin(gt)
        whole = coded.load(clip)
        y, x = top // 4, left // 4
        expected = whole["lq"][torch.tensor(got)][..., y : y + 4, x : x + 4]
        torch.testing.assert_close(lq, expected, rtol=0, atol=1e-6)


def test_rate_group_reversal_flips_each_group(coded):
    ds = RateGroupSamples(coded, rates=(1, 3), window=3, patch_size=4, augment=True, seed=5)
    orders = set()
    for index in range(9):
        frames = (ds[index]["lq"][:, :, 2, 0, 0] * 255 / 10).round().int().tolist()
        expected = group_indices(index, 9, rates=(1, 3), window=3)
        assert frames in (expected, [g[::-1] for g in expected])
        orders.add(frames == expected)
    assert orders == {True, False}


def test_errors_name_the_clip(tmp_path):
    write_clip(tmp_path / "long", random_frames(8, 16, 16))
    write_clip(tmp_path / "short", random_frames(3, 16, 16))
    clips = FrameFolders(tmp_path, scale=4)
    with pytest.raises(AfvsrError, match="clip short has 3 frames, fewer than num_frames 5"):
        SequenceSamples(clips, num_frames=5, patch_size=2)
    with pytest.raises(AfvsrError, match="clip short has 3 frames, too short for rates"):
        RateGroupSamples(clips, rates=(1, 3), window=3, patch_size=2)
    with pytest.raises(AfvsrError, match="clip long: LR frames are 4x4, smaller than patch_size 5"):
        SequenceSamples(clips, num_frames=2, patch_size=5)
    with pytest.raises(ValueError, match="odd window"):
        RateGroupSamples(clips, rates=(1,), window=4, patch_size=2)
    with pytest.raises(ValueError, match="positive integer rates"):
        RateGroupSamples(clips, rates=(), window=3, patch_size=2)
    with pytest.raises(IndexError):
        SequenceSamples(clips, num_frames=2, patch_size=2)[11]


def test_values_stay_exact_levels(tmp_path):
    frames = random_frames(4, 16, 20)
    write_clip(tmp_path / "r", frames)
    ds = SequenceSamples(FrameFolders(tmp_path, scale=2), num_frames=2, patch_size=3, seed=2)
    sample = ds[1]
    levels = sample["lq"] * 255
    torch.testing.assert_close(levels, levels.round(), rtol=0, atol=1e-4)
    assert 0 <= sample["lq"].min() and sample["lq"].max() <= 1
    flat = as_tensor(frames).flatten()
    assert set((sample["gt"].flatten() * 255).round().int().tolist()) <= set(
        (flat * 255).round().int().tolist()
    )
