"""The shared development data (../shared/data): split, sizes, order, samples on real frames.

Skipped, with the reason, when the folder is absent (a fresh machine does not have it).
"""

from __future__ import annotations

import pytest
import torch

from afvsr.data import SharedData, build_train_dataset, open_eval_dataset, read_frame
from afvsr.data.shared import DAVIS_VAL, require_shared_data_root, shared_data_root

ROOT = shared_data_root()
pytestmark = pytest.mark.skipif(
    ROOT is None, reason="shared development data (../shared/data or $AFVSR_SHARED_DATA) absent"
)


def test_recommended_split():
    val = open_eval_dataset("shared:val")
    train = SharedData(split="train")
    val_names = [c.name for c in val.clips]
    train_names = [c.name for c in train.clips]
    assert len(val_names) == 3 + 1 + 16 and len(train_names) == 17
    assert {f"davis2016/{n}" for n in DAVIS_VAL} <= set(val_names)
    assert "basketballpass" in val_names and "vimeo_septuplet/00002/0008" in val_names
    assert not set(val_names) & set(train_names)
    assert all(n.startswith("davis2016/") for n in train_names)
    long = open_eval_dataset("shared:val-long", gt_downscale=2)
    names = ["basketballpass", *(f"davis2016/{n}" for n in DAVIS_VAL)]
    assert [c.name for c in long.clips] == names  # every validation clip over 11 frames
    assert [g.num_frames for g in long.geometries] == [100, 50, 75, 99]
    assert long.geometries[1].gt_size == (240, 424)  # gt_downscale applies as in "val"


def test_sizes_order_and_lr(monkeypatch):
    val = SharedData(split="val")
    i = [c.name for c in val.clips].index("basketballpass")
    geo = val.geometries[i]
    assert (geo.num_frames, geo.gt_size, geo.lq_size) == (100, (240, 416), (60, 104))
    assert val.clips[i].gt_paths[9].name == "im10.png"  # natural order, not im1, im10, im100
    item = val.load(i, start=9, stop=11)
    torch.testing.assert_close(item["gt"][0], read_frame(ROOT / "basketballpass" / "im10.png"))
    assert item["lq"].shape == (2, 3, 60, 104) and item["key"] == "basketballpass"
    davis = [g for c, g in zip(val.clips, val.geometries, strict=True) if "davis" in c.name]
    assert all(g.gt_size == (480, 852) and g.lq_size == (120, 213) for g in davis)
    halved = SharedData(split="val", gt_downscale=2)
    sizes = {c.name: g.gt_size for c, g in zip(halved.clips, halved.geometries, strict=True)}
    assert sizes["davis2016/soapbox"] == (240, 424) and sizes["basketballpass"] == (240, 416)


def test_found_through_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AFVSR_SHARED_DATA", str(ROOT))
    assert shared_data_root() == ROOT
    monkeypatch.setenv("AFVSR_SHARED_DATA", str(tmp_path / "absent"))
    assert shared_data_root() is None
    with pytest.raises(FileNotFoundError, match="AFVSR_SHARED_DATA=.*absent"):
        require_shared_data_root()


@pytest.mark.parametrize("gt_downscale", [1, 2])
def test_training_patches_equal_crops_of_whole_frames(gt_downscale):
    ds = build_train_dataset(
        {
            "samples": "sequence",
            "num_frames": 2,
            "patch_size": 24,
            "augment": False,
            "gt_downscale": gt_downscale,
            "seed": 11,
        }
    )
    assert len(ds) == sum(g.num_frames for g in ds.clips.geometries)
    sample = ds[200]
    clip_name, start = sample["key"].rsplit("/", 1)
    clip = [c.name for c in ds.clips.clips].index(clip_name)
    whole = ds.clips.load(clip, start=int(start), stop=int(start) + 2)
    # Locate the GT patch in the whole frames, then compare the LR patch at the same place.
    gt, lq = sample["gt"], sample["lq"]
    s = 4
    rows = whole["gt"][0, :, ::s, :].unfold(-1, 96, s)  # (3, rows, cols, 96) candidate top rows
    match = (rows == gt[0, :, 0][:, None, None, :]).all(-1).all(0)  # (rows, cols)
    assert match.sum() == 1
    y, x = (int(v) for v in match.nonzero()[0])
    torch.testing.assert_close(gt, whole["gt"][..., s * y : s * y + 96, s * x : s * x + 96])
    expected = whole["lq"][..., y : y + 24, x : x + 24]
    diff = (lq - expected).abs()
    # Same values; float summation order may move a value sitting on a rounding tie by 1/255.
    assert diff.max() <= 1 / 255 + 1e-6 and (diff > 1e-6).float().mean() < 0.01
