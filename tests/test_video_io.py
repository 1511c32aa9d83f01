"""Streaming reader and writer: timestamps, rotation, colour, frame folders, bad input, atomicity."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from PIL import Image
from video_helpers import end_time, make_video, packets, pattern, read_frames

from afvsr.errors import AfvsrError
from afvsr.video.reader import VideoReader
from afvsr.video.writer import VideoWriter, open_output

VFR_PTS = [0, 40, 80, 200, 240, 300, 310, 400]  # ms: gaps and a burst


def test_reader_streams_frames_with_timestamps_rotation_and_streams(tmp_path):
    path = make_video(tmp_path / "in.mp4", num_frames=8, pts=VFR_PTS, rotation=90)
    with VideoReader(path) as reader:
        info = reader.info
        assert (info.width, info.height, info.rotation) == (37, 29, 90)
        assert (info.audio_streams, info.subtitle_streams, info.num_frames) == (1, 0, 8)
        frames, seen = [], []
        for frame in reader.frames():
            frames.append(frame)
            seen.append(reader.stamps.popleft())
    assert [s.index for s in seen] == list(range(8))
    assert [float(s.pts * info.time_base) for s in seen] == [p / 1000 for p in VFR_PTS]
    assert all(f.shape == (3, 29, 37) and f.dtype == torch.float32 for f in frames)
    expected = torch.from_numpy(pattern(3, 29, 37)).permute(2, 0, 1).float()
    # Lossless 4:4:4 input; what remains is 8-bit rounding on both sides of the YUV matrix.
    assert (frames[3] - expected).abs().max() < 3 / 255


@pytest.mark.parametrize(
    "matrix,tag,full_range", [("ITU709", 1, False), ("ITU601", 6, False), ("ITU709", 1, True)]
)
def test_reader_uses_the_input_colour_matrix_and_range(tmp_path, matrix, tag, full_range):
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[:, :16] = (230, 40, 30)  # saturated colours: matrix mistakes show here
    rgb[:, 16:32] = (30, 200, 60)
    rgb[:, 32:] = (40, 50, 220)
    path = tmp_path / "colour.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv444p"
        stream.codec_context.options = {"qp": "0"}
        stream.codec_context.colorspace = tag
        stream.codec_context.color_range = 2 if full_range else 1
        rng = "JPEG" if full_range else "MPEG"
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame = frame.reformat(format="yuv444p", dst_colorspace=matrix, dst_color_range=rng)
        frame.pts = 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    with VideoReader(path) as reader:
        decoded = next(reader.frames())
        assert reader.info.full_range == full_range
    assert reader.info.matrix == {"ITU709": "bt709", "ITU601": "bt601"}[matrix]
    error = (decoded.permute(1, 2, 0) * 255 - torch.from_numpy(rgb).float()).abs().max()
    assert error <= 3


def test_reader_converts_other_pixel_formats(tmp_path):
    """A grey (one-plane) video comes out as RGB with three equal channels."""
    grey = [np.repeat(np.full((8, 10, 1), 20 * i, np.uint8), 3, axis=2) for i in range(3)]
    path = make_video(
        tmp_path / "grey.mkv", num_frames=3, width=10, height=8, codec="ffv1", pix_fmt="gray",
        frames=grey, audio=False,
    )  # fmt: skip
    with VideoReader(path) as reader:
        assert reader.info.pix_fmt == "gray"
        frames = list(reader.frames())
    assert len(frames) == 3
    assert torch.allclose(frames[2], torch.full((3, 8, 10), 40 / 255))


def test_reader_reads_frame_folders_in_natural_order(tmp_path):
    for i in (1, 2, 10):  # im10 must come last, not after im1
        Image.fromarray(np.full((5, 7, 3), i, np.uint8)).save(tmp_path / f"im{i}.png")
    (tmp_path / "notes.txt").write_text("not a frame")
    with VideoReader(tmp_path) as reader:
        assert reader.info.is_folder and reader.info.num_frames == 3
        values = [round(f[0, 0, 0].item() * 255) for f in reader.frames()]
        names = [s.name for s in reader.stamps]
    assert values == [1, 2, 10] and names == ["im1.png", "im2.png", "im10.png"]


def test_reader_rejects_bad_input(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("hello, not a video")
    with pytest.raises(AfvsrError, match="not a readable video"):
        VideoReader(text)
    with pytest.raises(FileNotFoundError):
        VideoReader(tmp_path / "missing.mp4")

    empty = tmp_path / "empty.mkv"  # a video stream with no frames in it
    with av.open(str(empty), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height = 16, 16
        out.start_encoding()
    with pytest.raises(AfvsrError, match="no frames|no video stream"):
        VideoReader(empty)

    folder = tmp_path / "frames"
    folder.mkdir()
    with pytest.raises(AfvsrError, match="no image files"):
        VideoReader(folder)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(folder / "1.png")
    Image.fromarray(np.zeros((6, 4, 3), np.uint8)).save(folder / "2.png")
    with VideoReader(folder) as reader, pytest.raises(AfvsrError, match="frame 1 .*4x6"):
        list(reader.frames())


def test_reader_reports_the_frame_where_the_stream_breaks(tmp_path):
    path = make_video(
        tmp_path / "in.mkv", num_frames=6, codec="ffv1", pix_fmt="yuv444p", audio=False
    )
    with av.open(str(path)) as container:
        where = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    data = bytearray(path.read_bytes())
    pos, size = where[3]
    data[pos + 20 : pos + size - 10] = b"\x13" * (size - 30)  # garble frame 3's payload
    path.write_bytes(bytes(data))
    with VideoReader(path) as reader, pytest.raises(AfvsrError, match="at frame 3"):
        list(reader.frames())


def test_writer_keeps_timestamps_and_pads_odd_sizes(tmp_path):
    path = tmp_path / "out.mkv"  # Matroska stores each frame's duration: the end is exact
    tb = Fraction(1, 1000)
    writer = VideoWriter(path, width=37, height=29, fps=Fraction(25), time_base=tb, rotation=-90)
    assert writer.pad == (1, 1)  # yuv420p needs even sizes: one repeated row and column
    for i, p in enumerate(VFR_PTS):
        writer.write((pattern(i, 29, 37) * 255).astype(np.uint8), p, 40)
    writer.close()
    frames, pts, time_base = read_frames(path)
    assert [float(p * time_base) for p in pts] == [p / 1000 for p in VFR_PTS]
    assert frames[0].shape == (30, 38, 3)
    assert end_time(path) == pytest.approx(0.44)  # last frame at 0.4 s, shown for 40 ms
    with av.open(str(path)) as c:
        first = next(c.decode(video=0))
        assert first.rotation == -90 or first.rotation == 270
        assert (first.colorspace, first.color_range) == (6, 1)  # SD: BT.601, limited range


def test_writer_tags_hd_output_bt709(tmp_path):
    path = tmp_path / "hd.mkv"
    writer = VideoWriter(path, width=1280, height=720, fps=Fraction(25), time_base=Fraction(1, 25))
    writer.write(np.full((720, 1280, 3), (200, 40, 30), np.uint8), 0)
    writer.close()
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        assert (frame.colorspace, frame.color_primaries, frame.color_trc) == (1, 1, 1)
        rgb = frame.to_ndarray(format="rgb24", src_colorspace="ITU709", src_color_range="MPEG")
    assert np.abs(rgb[360, 640].astype(int) - (200, 40, 30)).max() <= 3


def test_writer_copies_audio_packets_unchanged(tmp_path):
    src = make_video(tmp_path / "in.mkv", num_frames=5)
    dst = tmp_path / "out.mkv"
    with VideoReader(src) as reader:
        info = reader.info
        writer = VideoWriter(
            dst, width=info.width, height=info.height, fps=info.fps, time_base=info.time_base,
            copy_streams=reader.copied_streams,
        )  # fmt: skip
        reader.on_packet = writer.copy_packet
        for frame in reader.frames():
            stamp = reader.stamps.popleft()
            rgb = (frame.permute(1, 2, 0) * 255).round().byte().numpy()
            writer.write(rgb, stamp.pts, stamp.duration)
        writer.close()
    assert packets(dst, "audio") == packets(src, "audio")
    assert len(packets(src, "audio")) > 3


@pytest.mark.parametrize("folder", [False, True])
def test_output_is_atomic(tmp_path, folder):
    target = tmp_path / ("frames" if folder else "out.mp4")
    kwargs = dict(width=8, height=8, fps=Fraction(25), time_base=Fraction(1, 25))
    with pytest.raises(KeyboardInterrupt), open_output(target, **kwargs) as writer:
        writer.write(np.zeros((8, 8, 3), np.uint8), *([] if folder else [0]))
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []  # neither the output nor a temporary file
    with open_output(target, **kwargs) as writer:
        writer.write(np.zeros((8, 8, 3), np.uint8), *([] if folder else [0]))
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
    assert target.stat().st_mode & 0o044  # readable like a plainly written file, not 0600
