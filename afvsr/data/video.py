"""Video files (mp4, mkv, avi, mov, ...) as a dataset source, streamed one frame at a time.

Decoding is ``afvsr.video.reader.VideoReader``'s (the one reader of the package: the input's own
colour matrix and range, rotation and timestamps known up front), so frames here are the frames
``afvsr upscale`` sees. Nothing holds more than one frame (or one chunk that the caller sized) in
memory; decoding starts again on every iteration.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

from afvsr.errors import AfvsrError

INDEXED_CONTAINERS = (".mp4", ".mov", ".m4v")  # their header's frame count is exact


def _count_packets(path: Path) -> int:
    """Frames of the first video stream, counted by demuxing (no decoding)."""
    import av  # imported here (as VideoReader below) so that `import afvsr.data` stays light

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size > 0)


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
        from afvsr.video.reader import VideoReader

        with VideoReader(self.path) as reader:
            info = reader.info
        self.fps = info.fps
        self.time_base = info.time_base
        self.height, self.width = info.height, info.width
        self.has_audio = info.audio_streams > 0
        exact = info.num_frames is not None and self.path.suffix.lower() in INDEXED_CONTAINERS
        self.num_frames = info.num_frames if exact else _count_packets(self.path)
        if self.num_frames == 0:
            raise AfvsrError(f"empty video: no frames in {self.path}")

    def __len__(self) -> int:
        return self.num_frames

    def __iter__(self) -> Iterator[Tensor]:
        """Decode the frames in order: each ``(3, h, w)`` float32 RGB in [0, 1]."""
        from afvsr.video.reader import VideoReader

        with VideoReader(self.path) as reader:
            yield from reader.frames()

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
