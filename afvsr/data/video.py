"""Video files (mp4, mkv, avi, mov, ...) read through PyAV, one decoded frame at a time.

Nothing here holds more than one frame (or one chunk that the caller sized) in memory, so a
video of any length can be streamed. The properties (frame rate, time base, frame count, audio
presence, size) are read when the file is opened; decoding starts again on every iteration.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import torch
from torch import Tensor

from afvsr.data.frames import uint8_to_float
from afvsr.errors import AfvsrError

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v")


def _open(path: Path):
    import av  # imported here so that `import afvsr.data` stays light

    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise AfvsrError(f"cannot read video {path}: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise AfvsrError(f"no video stream in {path}")
    return container


class VideoFile:
    """A video file streamed frame by frame: ``for frame in VideoFile(path)`` gives ``(3, h, w)``.

    Attributes:
        path: the file.
        fps: frames per second (``Fraction``; the stream's average rate, else its guessed rate).
        time_base: seconds per timestamp tick of the video stream (``Fraction``).
        num_frames: number of frames (from the header, else counted by demuxing, not decoding).
        has_audio: whether the file has at least one audio stream.
        height, width: frame size in pixels.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"missing video file: {self.path}")
        container = _open(self.path)
        try:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            if not rate:
                raise AfvsrError(f"unknown frame rate in {self.path}")
            self.fps = Fraction(rate)
            self.time_base = Fraction(stream.time_base)
            self.height = stream.codec_context.height
            self.width = stream.codec_context.width
            self.has_audio = len(container.streams.audio) > 0
            self.num_frames = stream.frames or sum(
                1 for packet in container.demux(stream) if packet.size > 0
            )
        finally:
            container.close()
        if self.num_frames == 0:
            raise AfvsrError(f"empty video: no frames in {self.path}")

    def __len__(self) -> int:
        return self.num_frames

    def __iter__(self) -> Iterator[Tensor]:
        """Decode the frames in order: each ``(3, h, w)`` float32 RGB in [0, 1]."""
        import av

        container = _open(self.path)
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                array = frame.to_ndarray(format="rgb24")  # (h, w, 3) uint8
                yield torch.from_numpy(uint8_to_float(array))  # (3, h, w)
        except av.error.FFmpegError as exc:
            raise AfvsrError(f"cannot decode video {self.path}: {exc}") from exc
        finally:
            container.close()

    def chunks(self, size: int) -> Iterator[Tensor]:
        """Consecutive frames in chunks ``(t, 3, h, w)`` of ``size`` frames (the last may be short)."""
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"expected a positive integer chunk size, got {size!r}")
        chunk: list[Tensor] = []
        for frame in self:
            chunk.append(frame)
            if len(chunk) == size:
                yield torch.stack(chunk)
                chunk = []
        if chunk:
            yield torch.stack(chunk)
