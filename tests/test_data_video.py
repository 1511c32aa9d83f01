"""Video files through PyAV: properties, exact frames (lossless codec), chunks, bad files."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from _data_trees import as_tensor, random_frames

from afvsr.data import VideoFile
from afvsr.errors import AfvsrError


def write_video(path, frames, *, codec, pix_fmt, fps=25, audio=False):
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        if audio:
            sound = container.add_stream("pcm_s16le", rate=8000)
            sound.layout = "mono"
        for i, array in enumerate(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
            if audio:
                samples = np.zeros((1, 320), dtype=np.int16)
                chunk = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
                chunk.sample_rate, chunk.pts = 8000, i * 320
                for packet in sound.encode(chunk):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_lossless_video_with_audio(tmp_path):
    frames = random_frames(7, 24, 32)
    write_video(tmp_path / "clip.mkv", frames, codec="ffv1", pix_fmt="bgr0", fps=25, audio=True)
    video = VideoFile(tmp_path / "clip.mkv")
    assert (video.num_frames, len(video), video.fps) == (7, 7, Fraction(25))
    assert (video.height, video.width, video.has_audio) == (24, 32, True)
    assert video.time_base > 0
    decoded = torch.stack(list(video))
    torch.testing.assert_close(decoded, as_tensor(frames), rtol=0, atol=0)
    assert [c.shape[0] for c in video.chunks(3)] == [3, 3, 1]
    torch.testing.assert_close(torch.cat(list(video.chunks(3))), decoded, rtol=0, atol=0)


def test_lossy_mp4_without_audio(tmp_path):
    frames = np.full((5, 32, 48, 3), (30, 160, 220), dtype=np.uint8)
    write_video(tmp_path / "clip.mp4", frames, codec="mpeg4", pix_fmt="yuv420p", fps=30)
    video = VideoFile(tmp_path / "clip.mp4")
    assert (video.num_frames, video.fps, video.has_audio) == (5, Fraction(30), False)
    first = next(iter(video))
    assert first.shape == (3, 32, 48)
    torch.testing.assert_close(first, as_tensor(frames[0]), rtol=0, atol=4 / 255)


def test_bad_video_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing video file: .*none.mp4"):
        VideoFile(tmp_path / "none.mp4")
    (tmp_path / "text.mp4").write_text("not a video")
    with pytest.raises(AfvsrError, match="not a readable video: .*text.mp4"):
        VideoFile(tmp_path / "text.mp4")
    with pytest.raises(ValueError, match="positive integer chunk size"):
        frames = random_frames(1, 8, 8)
        write_video(tmp_path / "one.mkv", frames, codec="ffv1", pix_fmt="bgr0")
        next(VideoFile(tmp_path / "one.mkv").chunks(0))
