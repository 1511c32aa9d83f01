"""Streaming input: decode a video file (PyAV) or read a folder of frames, one frame at a time.

Frames come out as ``(3, h, w)`` float32 RGB in [0, 1]. YUV is converted with the input's own
colour matrix and range (BT.709 is assumed for untagged HD, BT.601 for untagged SD, as players
do). Only the current frame is held: memory does not depend on the length of the video.

Audio and subtitle packets met while demuxing are handed, unchanged, to a callback (the writer
remuxes them), so the input is read exactly once.

A damaged video is an error, not a short output: a decode error, or a stream that ends before
the frame count or the video duration its container declares, raises a one-line AfvsrError
naming the frame reached and what was expected. With ``ignore_errors`` the frames that decode
are kept and :attr:`VideoReader.damage` says what was lost.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image
from torch import Tensor

from afvsr.errors import AfvsrError
from afvsr.io_utils import natural_sort_key

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".flv")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
FOLDER_FPS = Fraction(25)  # a folder of frames carries no frame rate; 25 is the PAL/REDS rate

# AVColorSpace (frame tag) -> swscale matrix. 5 (BT.470BG) and 6 (SMPTE 170M) are both BT.601.
_SWS_MATRIX = {
    1: "ITU709",
    4: "FCC",
    5: "ITU601",
    6: "ITU601",
    7: "SMPTE240M",
    9: "BT2020",
    10: "BT2020",
}
_MATRIX_NAMES = {
    "ITU709": "bt709",
    "FCC": "fcc",
    "ITU601": "bt601",
    "SMPTE240M": "smpte240m",
    "BT2020": "bt2020",
}


@dataclass(frozen=True)
class VideoInfo:
    """What the reader knows about its input before decoding the whole of it.

    ``num_frames`` is exact for a folder and for containers with an index (mp4, mov); for others
    it is estimated from the duration (None if unknown) and only drives the progress bar.
    Timestamps of frames (``FrameStamp``) are in units of ``time_base``.
    """

    path: Path
    is_folder: bool
    width: int
    height: int
    num_frames: int | None
    fps: Fraction
    time_base: Fraction
    duration: float | None  # seconds, from the container
    rotation: int  # display rotation in degrees, counter-clockwise
    pix_fmt: str
    matrix: str  # YUV->RGB matrix used ("bt709", "bt601", ...; "rgb" for RGB sources)
    full_range: bool
    color_primaries: int  # AVColorPrimaries tag of the input (2 = unspecified)
    color_trc: int  # AVColorTransferCharacteristic tag of the input (2 = unspecified)
    sample_aspect_ratio: Fraction | None
    audio_streams: int
    subtitle_streams: int


@dataclass(frozen=True)
class FrameStamp:
    """When a decoded frame is shown: ``pts`` and ``duration`` in ``VideoInfo.time_base`` units
    (duration 0 = unknown); ``name``: its file name for a folder input, else None."""

    index: int
    pts: int
    duration: int
    name: str | None = None


def to_tensor(rgb: np.ndarray) -> Tensor:
    """``(h, w, 3)`` uint8 or uint16 RGB -> ``(3, h, w)`` float32 in [0, 1]."""
    peak = 65535.0 if rgb.dtype == np.uint16 else 255.0
    if not rgb.flags.writeable:  # PIL's arrays are read-only; torch wants to own writable memory
        rgb = rgb.copy()
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(peak)


class VideoReader:
    """Open ``path`` (a video file or a folder of images) and decode it lazily.

    Use as a context manager. ``frames()`` yields ``(3, h, w)`` float32 tensors in display order
    and appends each frame's :class:`FrameStamp` to ``stamps`` (a queue: the consumer pops them
    as it writes the frames, so nothing grows with the video). Audio and subtitle packets go to
    ``on_packet`` (set it before iterating), untouched.

    The first frame is decoded when the reader opens, so an empty or undecodable input fails
    before any output is created, and the rotation and colour tags are known up front.

    ``ignore_errors``: skip packets that fail to decode and accept a stream shorter than
    declared; ``damage`` then describes the loss in one line (None: nothing lost).
    """

    def __init__(self, path: str | os.PathLike, *, ignore_errors: bool = False) -> None:
        self.path = Path(path)
        self.ignore_errors = ignore_errors
        self.damage: str | None = None
        self._decode_errors = 0
        if not self.path.exists():
            raise FileNotFoundError(f"input not found: {self.path}")
        self.stamps: deque[FrameStamp] = deque()  # frames yielded and not yet popped
        self.num_decoded = 0
        self.on_packet: Callable[[av.Packet], None] | None = None
        self._pending: list[av.Packet] = []  # audio/subtitle packets read before on_packet was set
        self._container = None
        if self.path.is_dir():
            self._open_folder()
        else:
            self._open_video()

    # -- frame folders -------------------------------------------------------------------------
    def _open_folder(self) -> None:
        files = [p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            raise AfvsrError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in folder {self.path}")
        self._files = sorted(files, key=lambda p: natural_sort_key(p.name))
        first = self._read_image(0)
        h, w = first.shape[:2]
        self.info = VideoInfo(
            path=self.path,
            is_folder=True,
            width=w,
            height=h,
            num_frames=len(self._files),
            fps=FOLDER_FPS,
            time_base=1 / FOLDER_FPS,
            duration=len(self._files) / FOLDER_FPS,
            rotation=0,
            pix_fmt="rgb24",
            matrix="rgb",
            full_range=True,
            color_primaries=2,
            color_trc=2,
            sample_aspect_ratio=None,
            audio_streams=0,
            subtitle_streams=0,
        )

    def _read_image(self, i: int) -> np.ndarray:
        path = self._files[i]
        try:
            with Image.open(path) as im:
                if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grey
                    grey = np.asarray(im, dtype=np.uint16)
                    return np.repeat(grey[..., None], 3, axis=2)
                return np.asarray(im.convert("RGB"))
        except OSError as exc:
            raise AfvsrError(f"cannot read frame {i} ({path.name}): {exc}") from exc

    def _folder_frames(self) -> Iterator[Tensor]:
        for i, path in enumerate(self._files):
            rgb = self._read_image(i)
            if rgb.shape[:2] != (self.info.height, self.info.width):
                raise AfvsrError(
                    f"frame {i} ({path.name}) is {rgb.shape[1]}x{rgb.shape[0]}, expected "
                    f"{self.info.width}x{self.info.height} like the first frame"
                )
            self.stamps.append(FrameStamp(i, i, 1, path.name))
            self.num_decoded += 1
            yield to_tensor(rgb)

    # -- video files ---------------------------------------------------------------------------
    def _open_video(self) -> None:
        try:
            self._container = av.open(str(self.path), "r")
        except av.error.EOFError:  # a header and nothing else
            raise AfvsrError(f"no frames in {self.path}") from None
        except (av.error.FFmpegError, UnicodeDecodeError) as exc:
            raise AfvsrError(f"not a readable video: {self.path} ({exc})") from exc
        container = self._container
        # The first real video stream: cover art (an "attached picture") is a one-frame stream.
        still = av.stream.Disposition.attached_pic | av.stream.Disposition.still_image
        videos = [v for v in container.streams.video if not v.disposition & still]
        if not videos:
            self.close()
            raise AfvsrError(f"no video stream in {self.path}")
        self._video = videos[0]
        self._video.thread_type = "AUTO"  # frame + slice threads; decode order is unchanged
        self._copied = [s for s in container.streams if s.type in ("audio", "subtitle")]
        self._frame_iter = self._decode()
        try:
            self._first = next(self._frame_iter)
        except StopIteration:
            self.close()
            raise AfvsrError(f"no frames could be decoded from {self.path}") from None
        except BaseException:
            self.close()
            raise
        self.info = self._describe(self._first)

    def _describe(self, first: av.VideoFrame) -> VideoInfo:
        stream = self._video
        time_base = stream.time_base or Fraction(1, 90000)
        fps = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(25)
        duration = None
        if stream.duration is not None:
            duration = float(stream.duration * time_base)
        elif self._container.duration is not None:
            duration = self._container.duration / av.time_base
        num_frames = stream.frames or None
        if num_frames is None and duration is not None:
            num_frames = max(1, round(duration * fps))  # estimate: the progress bar's total only
        matrix, full_range = self._colour(first)
        sar = stream.sample_aspect_ratio
        return VideoInfo(
            path=self.path,
            is_folder=False,
            width=first.width,
            height=first.height,
            num_frames=num_frames,
            fps=Fraction(fps),
            time_base=Fraction(time_base),
            duration=duration,
            rotation=int(first.rotation or 0),
            pix_fmt=first.format.name,
            matrix=_MATRIX_NAMES.get(matrix, "rgb"),
            full_range=full_range,
            color_primaries=int(first.color_primaries),
            color_trc=int(first.color_trc),
            sample_aspect_ratio=Fraction(sar) if sar and sar != 1 else None,
            audio_streams=sum(s.type == "audio" for s in self._copied),
            subtitle_streams=sum(s.type == "subtitle" for s in self._copied),
        )

    def _colour(self, frame: av.VideoFrame) -> tuple[str, bool]:
        """The swscale matrix name and range with which this input's YUV becomes RGB."""
        fmt = frame.format
        if fmt.is_rgb or fmt.name.startswith(("gray", "pal", "ya")):
            return "RGB", True
        matrix = _SWS_MATRIX.get(int(frame.colorspace))
        if matrix is None:  # untagged: what players assume
            matrix = "ITU709" if frame.width >= 1280 or frame.height >= 720 else "ITU601"
        full_range = int(frame.color_range) == 2 or fmt.name.startswith("yuvj")
        return matrix, full_range

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        deep = max(c.bits for c in frame.format.components) > 8
        fmt = "rgb48le" if deep else "rgb24"
        matrix, full_range = self._colour(frame)
        if matrix == "RGB":
            return frame.to_ndarray(format=fmt)
        return frame.to_ndarray(
            format=fmt,
            src_colorspace=matrix,
            src_color_range="JPEG" if full_range else "MPEG",
            dst_color_range="JPEG",
            interpolation="BICUBIC",  # chroma upsampling
        )

    def _decode(self) -> Iterator[av.VideoFrame]:
        """Demux every stream once; decode video, forward audio/subtitle packets."""
        video = self._video
        packets = self._container.demux([video, *self._copied])
        while True:
            try:
                packet = next(packets, None)
                if packet is None:
                    return
                if packet.stream.index != video.index:
                    if packet.size:  # skip the empty flush packets demux ends with
                        self._forward(packet)
                    continue
                frames = packet.decode()
            except av.error.FFmpegError as exc:
                self._decode_errors += 1
                if not self.ignore_errors:
                    raise AfvsrError(
                        f"{self.path}: the video stream cannot be decoded at frame "
                        f"{self.num_decoded}{self._expected_text()} ({exc}); --ignore-errors "
                        "keeps the frames that decode"
                    ) from exc
                continue  # a damaged packet: skip it, the decoder resynchronises
            yield from frames

    def _declared(self) -> tuple[int | None, float | None]:
        """``(frames, seconds)`` the container declares for the video stream (None: unknown)."""
        stream, container = self._video, self._container
        # Only durations the file states for the video stream itself: FFmpeg fills in estimates
        # (from the longest stream, or the bit rate) where a container has none.
        seconds = None
        if "DURATION" in stream.metadata:  # Matroska/WebM per-stream tag, "HH:MM:SS.nnnnnnnnn"
            with contextlib.suppress(ValueError):
                h, m, sec = stream.metadata["DURATION"].split(":")
                seconds = int(h) * 3600 + int(m) * 60 + float(sec)
        elif "mov" in container.format.name.split(",") and stream.duration is not None:
            seconds = float(stream.duration * stream.time_base)  # MP4/MOV: the track's header
        elif len(container.streams) == 1 and container.duration is not None:
            seconds = container.duration / av.time_base
        return (stream.frames or None), seconds

    def _expected_text(self) -> str:
        frames, seconds = self._declared()
        if frames:
            return f" of {frames}"
        info = getattr(self, "info", None)  # None while the first frame is decoded
        if seconds and info is not None:
            return f" of about {round(seconds * info.fps)}"
        return ""

    def _check_complete(self, end_pts: int | None) -> None:
        """After the last frame: compare what was decoded with what the container declares."""
        frames, seconds = self._declared()
        tb, fps = self.info.time_base, self.info.fps
        # Where the last frame ends: the declared duration may count from 0 (Matroska's tag is
        # the end time) or from the first frame (MP4): take the more lenient reading.
        start = float((self._video.start_time or 0) * tb)
        end = 0.0 if end_pts is None else float(end_pts * tb)
        reached = max(end, end - start)
        problem = None
        if frames and self.num_decoded < frames:
            problem = f"the video stream ends at frame {self.num_decoded} of the {frames} declared"
        elif seconds and reached < seconds - 1.5 / float(fps):  # more than a frame is missing
            problem = (
                f"the video stream ends at frame {self.num_decoded} ({reached:.2f} s), but the "
                f"container declares {seconds:.2f} s (about {round(seconds * fps)} frames)"
            )
        elif self._decode_errors:
            problem = f"{self._decode_errors} packet(s) of the video stream could not be decoded"
        if problem is None:
            return
        if not self.ignore_errors:
            raise AfvsrError(
                f"{self.path}: {problem}; the file is damaged (--ignore-errors keeps the frames "
                "that decode)"
            )
        self.damage = f"{problem}; kept the {self.num_decoded} frames that decode"

    def _forward(self, packet: av.Packet) -> None:
        if self.on_packet is None:
            self._pending.append(packet)
            return
        for early in self._pending:
            self.on_packet(early)
        self._pending.clear()
        self.on_packet(packet)

    def _video_frames(self) -> Iterator[Tensor]:
        default_step = max(1, round(1 / (self.info.fps * self.info.time_base)))
        frame, last_pts, end_pts = self._first, None, None
        while frame is not None:
            if frame.width != self.info.width or frame.height != self.info.height:
                raise AfvsrError(
                    f"{self.path}: frame {self.num_decoded} is {frame.width}x{frame.height}, "
                    f"expected {self.info.width}x{self.info.height} (size changes mid-stream "
                    "are not supported)"
                )
            pts = frame.pts
            if pts is None:  # no timestamp from the container: continue at the frame rate
                pts = last_pts + default_step if last_pts is not None else 0
            last_pts = pts
            end_pts = pts + (frame.duration or default_step)
            rgb = self._to_rgb(frame)
            self.stamps.append(FrameStamp(self.num_decoded, int(pts), int(frame.duration or 0)))
            self.num_decoded += 1
            yield to_tensor(rgb)
            frame = next(self._frame_iter, None)
        self._check_complete(end_pts)
        if self._pending and self.on_packet is not None:  # audio after the last video packet
            for early in self._pending:
                self.on_packet(early)
            self._pending.clear()

    # -- public --------------------------------------------------------------------------------
    @property
    def copied_streams(self) -> list:
        """The input's audio and subtitle streams, whose packets go to ``on_packet``."""
        return [] if self.info.is_folder else list(self._copied)

    def frames(self) -> Iterator[Tensor]:
        """Yield every frame as ``(3, h, w)`` float32 RGB in [0, 1], in order (once)."""
        if self.info.is_folder:
            return self._folder_frames()
        return self._video_frames()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
