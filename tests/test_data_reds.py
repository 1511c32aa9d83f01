"""REDS: both layouts, the REDS4 / REDSval4 / training splits, LR from disk or by BI."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _data_trees import as_tensor, random_frames, write_clip

from afvsr.data import REDS, REDS4, REDSVAL4, open_eval_dataset
from afvsr.data.reds import reds_clips
from afvsr.imresize import bi_degrade

TRAIN = ("000", "001", "002", "011", "015", "020", "021")
VAL = ("000", "001", "003", "006", "017")


def make_reds(root: Path, *, flat: bool = False, with_lq: bool = True) -> dict[str, tuple]:
    """Tiny REDS: 3 frames of 8x12 per clip (LR 2x3); returns (gt, lq) uint8 per clip key."""
    data = {}
    for part, names in (("train", TRAIN), ("val", VAL)):
        base = root if flat else root / part
        for i, name in enumerate(names):
            gt = random_frames(3, 8, 12, seed=100 * (part == "val") + i)
            lq = random_frames(3, 2, 3, seed=1000 + 100 * (part == "val") + i)
            write_clip(base / f"{part}_sharp" / name, gt)
            if with_lq:
                write_clip(base / f"{part}_sharp_bicubic" / "X4" / name, lq)
            data[f"{part}/{name}"] = (gt, lq)
    return data


@pytest.mark.parametrize("flat", [False, True])
def test_reds4_and_redsval4_read_disk_lr(tmp_path, flat):
    data = make_reds(tmp_path, flat=flat)
    reds4 = REDS(tmp_path, split="REDS4")
    assert [c.name for c in reds4.clips] == list(REDS4) == ["000", "011", "015", "020"]
    item = reds4[1]
    assert item["key"] == "011"
    torch.testing.assert_close(item["gt"], as_tensor(data["train/011"][0]), rtol=0, atol=0)
    torch.testing.assert_close(item["lq"], as_tensor(data["train/011"][1]), rtol=0, atol=0)
    val4 = open_eval_dataset("redsval4", root=tmp_path)  # names are case-insensitive
    assert val4.name == "REDSval4"
    assert [c.name for c in val4.clips] == list(REDSVAL4) == ["000", "001", "006", "017"]
    torch.testing.assert_close(val4[2]["gt"], as_tensor(data["val/006"][0]), rtol=0, atol=0)


def test_training_split_leaves_test_clips_out(tmp_path):
    make_reds(tmp_path)
    names = [c.name for c in reds_clips(tmp_path, "train")]
    assert names == ["train/001", "train/002", "train/021"]
    with_val = [c.name for c in reds_clips(tmp_path, "train", include_val=True)]
    assert with_val == names + ["val/003"]


def test_lr_made_by_bi_when_asked(tmp_path):
    data = make_reds(tmp_path, with_lq=False)
    with pytest.raises(FileNotFoundError, match="missing REDS LR folder: .*X4/000.*lq='bi'"):
        REDS(tmp_path, split="REDS4")
    item = REDS(tmp_path, split="REDS4", lq="bi")[0]
    expected = bi_degrade(as_tensor(data["train/000"][0]), 4)
    torch.testing.assert_close(item["lq"], expected, rtol=0, atol=0)


def test_missing_clip_and_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing REDS folder"):
        REDS(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="no REDS frames in .*train/train_sharp"):
        REDS(tmp_path)
    write_clip(tmp_path / "train" / "train_sharp" / "000", random_frames(1, 8, 8))
    with pytest.raises(FileNotFoundError, match="missing REDS clip folder: .*train_sharp/011"):
        REDS(tmp_path, split="REDS4", lq="bi")
    with pytest.raises(ValueError, match="expected split in"):
        REDS(tmp_path, split="REDS5")
    with pytest.raises(ValueError, match="needs root"):
        open_eval_dataset("REDS4")
