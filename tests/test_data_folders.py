"""Frame folders (Vid4-style) and the clip checks every layout shares."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _data_trees import as_tensor, random_frames, write_clip, write_image

from afvsr.data import FrameFolders, list_frames, read_frame
from afvsr.errors import AfvsrError
from afvsr.imresize import bi_degrade, imresize, quantize_uint8


def test_natural_order_and_values(tmp_path):
    frames = random_frames(11, 8, 12)
    names = [f"im{i + 1}.png" for i in range(11)]  # im1 .. im11, not zero-padded
    write_clip(tmp_path / "seq", frames, names)
    assert [p.name for p in list_frames(tmp_path / "seq")][:3] == ["im1.png", "im2.png", "im3.png"]
    assert list_frames(tmp_path / "seq")[-2].name == "im10.png"
    item = FrameFolders(tmp_path, scale=4)[0]
    assert item["key"] == "seq"
    torch.testing.assert_close(item["gt"], as_tensor(frames), rtol=0, atol=0)
    torch.testing.assert_close(item["lq"], bi_degrade(as_tensor(frames), 4), rtol=0, atol=0)
    assert item["lq"].shape == (11, 3, 2, 3)


def test_lr_from_disk_and_names_with_spaces(tmp_path):
    gt, lq = random_frames(3, 8, 12, seed=1), random_frames(3, 2, 3, seed=2)
    names = [f"Frame {i:03d}.png" for i in (1, 2, 3)]
    write_clip(tmp_path / "gt" / "calendar", gt, names)
    write_clip(tmp_path / "lq" / "calendar", lq, names)
    write_clip(tmp_path / "gt" / "city", gt, names)
    write_clip(tmp_path / "lq" / "city", lq, names)
    ds = FrameFolders(tmp_path / "gt", scale=4, lq_root=tmp_path / "lq")
    assert [c.name for c in ds.clips] == ["calendar", "city"] and ds.name == "gt"
    torch.testing.assert_close(ds[1]["lq"], as_tensor(lq), rtol=0, atol=0)
    torch.testing.assert_close(ds[1]["gt"], as_tensor(gt), rtol=0, atol=0)


def test_root_holding_frames_is_one_sequence_and_jpeg(tmp_path):
    frame = np.full((1, 8, 8, 3), (200, 100, 50), dtype=np.uint8)
    write_clip(tmp_path / "walk", frame, ["a.jpg"])
    ds = FrameFolders(tmp_path / "walk", scale=2)
    item = ds[0]
    assert item["key"] == "walk" and item["gt"].shape == (1, 3, 8, 8)
    expected = torch.tensor([200, 100, 50]).view(3, 1, 1) / 255
    torch.testing.assert_close(item["gt"][0], expected.expand(3, 8, 8), rtol=0, atol=3 / 255)


def test_mod_crop_and_gt_downscale(tmp_path):
    frames = random_frames(2, 18, 22)
    write_clip(tmp_path / "seq", frames)
    item = FrameFolders(tmp_path, scale=4)[0]
    torch.testing.assert_close(item["gt"], as_tensor(frames)[..., :16, :20], rtol=0, atol=0)
    assert item["lq"].shape == (2, 3, 4, 5)
    # x2 first: 18x22 -> 9x11, rounded to 8 bits, cropped to 8x8, LR 2x2.
    halved = FrameFolders(tmp_path, scale=4, gt_downscale=2)
    assert halved.geometries[0].gt_size == (8, 8)
    expected = quantize_uint8(imresize(as_tensor(frames), scale=0.5))[..., :8, :8]
    torch.testing.assert_close(halved[0]["gt"], expected, rtol=0, atol=1e-6)
    part = halved.load(0, start=1)
    torch.testing.assert_close(part["lq"], halved[0]["lq"][1:], rtol=0, atol=0)


def test_read_frame_box(tmp_path):
    frames = random_frames(1, 10, 14)
    write_clip(tmp_path, frames, ["x.png"])
    got = read_frame(tmp_path / "x.png", (2, 3, 4, 5))
    torch.testing.assert_close(got, as_tensor(frames[0])[:, 2:6, 3:8], rtol=0, atol=0)
    with pytest.raises(ValueError, match="inside the 10x14 image"):
        read_frame(tmp_path / "x.png", (8, 0, 4, 4))


def test_bad_inputs_name_the_file_or_clip(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing folder: .*nowhere"):
        FrameFolders(tmp_path / "nowhere")

    write_clip(tmp_path / "sizes", random_frames(2, 8, 8))
    write_image(tmp_path / "sizes" / "00000002.png", random_frames(1, 8, 12)[0])
    with pytest.raises(AfvsrError, match="frames of different sizes.*00000002.png is 12x8"):
        FrameFolders(tmp_path / "sizes")

    write_clip(tmp_path / "notes", random_frames(2, 8, 8))
    (tmp_path / "notes" / "notes.txt").write_text("hello")
    with pytest.raises(AfvsrError, match="non-image file among frames: .*notes.txt"):
        FrameFolders(tmp_path / "notes")

    (tmp_path / "empty" / "seq").mkdir(parents=True)
    with pytest.raises(AfvsrError, match="empty clip: no frames in .*seq"):
        FrameFolders(tmp_path / "empty")

    write_clip(tmp_path / "nested" / "seq", random_frames(1, 8, 8))
    (tmp_path / "nested" / "seq" / "more").mkdir()
    with pytest.raises(AfvsrError, match="folder among frames: .*more"):
        FrameFolders(tmp_path / "nested")

    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "0.png").write_bytes(b"not a png")
    with pytest.raises(AfvsrError, match="cannot read image .*0.png"):
        FrameFolders(tmp_path / "broken")


def test_gt_lr_mismatch(tmp_path):
    write_clip(tmp_path / "gt" / "a", random_frames(3, 8, 8))
    write_clip(tmp_path / "count" / "a", random_frames(2, 2, 2))
    with pytest.raises(AfvsrError, match="clip a: 3 GT frames but 2 LR frames"):
        FrameFolders(tmp_path / "gt", lq_root=tmp_path / "count")
    write_clip(tmp_path / "size" / "a", random_frames(3, 3, 2))
    with pytest.raises(AfvsrError, match=r"clip a: LR x4 != GT: .* is 2x3, .* is 8x8"):
        FrameFolders(tmp_path / "gt", lq_root=tmp_path / "size")
    with pytest.raises(FileNotFoundError, match="missing folder: .*missing"):
        FrameFolders(tmp_path / "gt", lq_root=tmp_path / "missing")
    write_clip(tmp_path / "gt" / "b", random_frames(3, 8, 8))
    with pytest.raises(FileNotFoundError, match="missing frame folder: .*size/b"):
        FrameFolders(tmp_path / "gt", lq_root=tmp_path / "size")
    write_clip(tmp_path / "size" / "b", random_frames(3, 2, 2))
    write_clip(tmp_path / "size" / "c", random_frames(3, 2, 2))
    with pytest.raises(AfvsrError, match="LR sequences without ground truth in .*gt: c"):
        FrameFolders(tmp_path / "gt", lq_root=tmp_path / "size")
