"""Vimeo-90K septuplets: lists when present, else all; LR by BI or from disk."""

from __future__ import annotations

import pytest
import torch
from _data_trees import as_tensor, random_frames, write_clip

from afvsr.data import Vimeo90K, open_eval_dataset
from afvsr.data.vimeo import vimeo_keys
from afvsr.errors import AfvsrError
from afvsr.imresize import bi_degrade

KEYS = ("00001/0001", "00001/0002", "00002/0001")
NAMES = [f"im{i}.png" for i in range(1, 8)]


def make_vimeo(root, *, sequences=True):
    frames = {}
    for i, key in enumerate(KEYS):
        frames[key] = random_frames(7, 8, 12, seed=i)
        write_clip((root / "sequences" if sequences else root) / key, frames[key], NAMES)
    return frames


def test_lists_select_the_split(tmp_path):
    frames = make_vimeo(tmp_path)
    assert vimeo_keys(tmp_path, "test") == list(KEYS)  # no lists: everything
    (tmp_path / "sep_testlist.txt").write_text("00001/0002\n")
    assert vimeo_keys(tmp_path, "test") == ["00001/0002"]
    assert vimeo_keys(tmp_path, "train") == ["00001/0001", "00002/0001"]
    (tmp_path / "sep_trainlist.txt").write_text("00002/0001\n\n")
    assert vimeo_keys(tmp_path, "train") == ["00002/0001"]
    ds = open_eval_dataset("vimeo:test", root=tmp_path)
    assert ds.name == "vimeo:test" and len(ds) == 1
    item = ds[0]
    assert item["key"] == "00001/0002" and item["gt"].shape == (7, 3, 8, 12)
    torch.testing.assert_close(item["gt"], as_tensor(frames["00001/0002"]), rtol=0, atol=0)
    torch.testing.assert_close(item["lq"], bi_degrade(item["gt"], 4), rtol=0, atol=0)


def test_root_may_be_the_sequences_folder_and_lr_from_disk(tmp_path):
    make_vimeo(tmp_path / "gt", sequences=False)
    lq = {key: random_frames(7, 2, 3, seed=9) for key in KEYS}
    for key in KEYS:
        write_clip(tmp_path / "lq" / "sequences" / key, lq[key], NAMES)
    ds = Vimeo90K(tmp_path / "gt", split="train", lq_root=tmp_path / "lq")
    assert [c.name for c in ds.clips] == list(KEYS)
    torch.testing.assert_close(ds[2]["lq"], as_tensor(lq["00002/0001"]), rtol=0, atol=0)


def test_bad_septuplets(tmp_path):
    make_vimeo(tmp_path)
    (tmp_path / "sequences" / "00001" / "0001" / "im7.png").unlink()
    with pytest.raises(AfvsrError, match="septuplet .*00001/0001: expected 7 frames, found 6"):
        Vimeo90K(tmp_path)
    (tmp_path / "sep_testlist.txt").write_text("00009/0001\n")
    with pytest.raises(FileNotFoundError, match="missing frame folder: .*00009/0001"):
        Vimeo90K(tmp_path)
    with pytest.raises(FileNotFoundError, match="missing folder"):
        Vimeo90K(tmp_path / "nowhere")
