"""Streaming output: encode frames with PyAV (libx264 by default) or write a folder of PNGs.

Each frame keeps its input timestamp (variable frame rate survives), audio and subtitle packets
are remuxed unchanged (the same bytes), and the rotation tag is copied. Colour: RGB is converted
to YUV with BT.709 for HD output (width >= 1280 or height >= 720) and BT.601 below, limited range,
and the stream is tagged accordingly so players decode it the same way.

Writers are given a temporary path by :func:`open_output`, which renames it onto the target only
when everything was written: an error or Ctrl-C leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from afvsr.errors import AfvsrError
from afvsr.io_utils import atomic_path, remove_stale_temps, temp_affixes, umask_mode

# AVColorSpace / AVColorPrimaries / AVColorTransferCharacteristic codes (they coincide here).
BT709, UNSPECIFIED, SMPTE170M, BT2020 = 1, 2, 6, 9


def is_hd(width: int, height: int) -> bool:
    return width >= 1280 or height >= 720


CRF_ENCODERS = ("libx264", "libx265", "libvpx-vp9", "libaom-av1", "libsvtav1")


def encoder_pixel_format(codec: str) -> str:
    """The pixel format to encode with: yuv420p or rgb24 where ``codec`` has it, else its first."""
    try:
        encoder = av.codec.Codec(codec, "w")
    except (av.error.FFmpegError, ValueError) as exc:
        raise AfvsrError(f"unknown video encoder {codec!r} ({exc})") from exc
    if encoder.type != "video":
        raise AfvsrError(f"{codec!r} is not a video encoder")
    formats = [f.name for f in encoder.video_formats or []]
    return next(
        (f for f in ("yuv420p", "rgb24") if f in formats), formats[0] if formats else "yuv420p"
    )


def tag_colour(cc, width: int, height: int, color_primaries: int, color_trc: int) -> str:
    """Set a YUV encoder's colour tags: matrix by size (BT.709 for HD, BT.601 below; BT.2020
    kept), limited range, the input's primaries/transfer or the standard's. Returns the matrix
    name for ``VideoFrame.reformat``."""
    hd = is_hd(width, height)
    matrix = "BT2020" if color_primaries == BT2020 else ("ITU709" if hd else "ITU601")
    cc.colorspace = {"BT2020": BT2020, "ITU709": BT709, "ITU601": SMPTE170M}[matrix]
    cc.color_range = 1  # MPEG (limited): what every player expects from yuv420p
    standard = BT709 if hd else SMPTE170M
    cc.color_primaries = color_primaries if color_primaries != UNSPECIFIED else standard
    cc.color_trc = color_trc if color_trc != UNSPECIFIED else standard
    return matrix


class VideoWriter:
    """Encode ``(h, w, 3)`` uint8 RGB frames into a video file and remux copied packets.

    Args:
        path: the file to write (its extension picks the container).
        width, height: frame size as given to :meth:`write`. Codecs with subsampled chroma
            (yuv420p) need even sizes: an odd size is padded by repeating the last row/column.
        fps: nominal frame rate (written as the stream rate; timestamps decide playback).
        time_base: the unit of the ``pts`` passed to :meth:`write`.
        codec, crf: encoder name and constant rate factor (for x264/x265/VP9/AV1 encoders).
        encoder_options: extra encoder options (FFmpeg names, e.g. ``{"rc-lookahead": "10"}``).
        rotation: display rotation in degrees, counter-clockwise (0 = none).
        copy_streams: input audio/subtitle streams; their packets go through :meth:`copy_packet`.
        color_primaries, color_trc: the input's tags (2 = unspecified: use the standard's).
        metadata: container tags, e.g. ``{"comment": "afvsr demo"}``.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        width: int,
        height: int,
        fps: Fraction,
        time_base: Fraction,
        codec: str = "libx264",
        crf: int = 18,
        rotation: int = 0,
        sample_aspect_ratio: Fraction | None = None,
        copy_streams: list | tuple = (),
        color_primaries: int = UNSPECIFIED,
        color_trc: int = UNSPECIFIED,
        encoder_options: dict[str, str] | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        pix_fmt = encoder_pixel_format(codec)
        self.pix_fmt = pix_fmt
        self.is_yuv = not av.VideoFormat(pix_fmt).is_rgb
        # Subsampled chroma needs even sizes: pad by one row/column (repeated edge), never crop.
        subsampled = self.is_yuv and pix_fmt not in ("yuv444p", "gray")
        self.width, self.height = width, height
        self.pad = (height % 2 if subsampled else 0, width % 2 if subsampled else 0)
        enc_w, enc_h = width + self.pad[1], height + self.pad[0]

        self.container = av.open(str(self.path), "w")
        try:
            stream = self.container.add_stream(codec, rate=fps)
            stream.width, stream.height, stream.pix_fmt = enc_w, enc_h, pix_fmt
            stream.time_base = time_base
            cc = stream.codec_context
            cc.time_base = time_base
            if codec in CRF_ENCODERS:
                cc.options = {"crf": str(crf), **({"b": "0"} if codec == "libvpx-vp9" else {})}
            if encoder_options:  # e.g. a shorter x264 look-ahead to fit a memory budget
                cc.options = {**cc.options, **encoder_options}
            if sample_aspect_ratio is not None:
                cc.sample_aspect_ratio = sample_aspect_ratio
            if self.is_yuv:
                self.matrix = tag_colour(cc, enc_w, enc_h, color_primaries, color_trc)
            if rotation:
                stream.set_display_rotation(rotation)
            self.stream = stream
            self._copies = self._add_copies(copy_streams)
            self.container.metadata.update(metadata or {})
            self.container.start_encoding()  # header now: container/codec errors surface early
        except av.error.FFmpegError as exc:
            self.container.close()
            raise AfvsrError(f"cannot write {self.path.suffix} video with {codec}: {exc}") from exc
        except BaseException:
            self.container.close()
            raise
        self.time_base = time_base
        self._last_pts: int | None = None
        self._durations: dict[int, int] = {}  # pts -> duration of frames inside the encoder
        self.frames_written = 0

    def _add_copies(self, copy_streams) -> dict[int, av.stream.Stream]:
        """Output streams for the input streams to remux, by input stream index."""
        copies = {}
        for template in copy_streams:
            try:
                copies[template.index] = self.container.add_stream_from_template(template)
            except ValueError as exc:
                raise AfvsrError(
                    f"cannot copy the {template.type} stream ({template.codec_context.name}) "
                    f"into {self.path.suffix or 'this'} output: {exc}; choose a .mkv output"
                ) from None
        return copies

    def write(self, rgb: np.ndarray, pts: int, duration: int = 0) -> None:
        """Encode one ``(height, width, 3)`` uint8 RGB frame shown at ``pts`` for ``duration``
        (both in time_base; duration 0 = unknown, the muxer guesses it from the frame rate)."""
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise ValueError(
                f"expected a ({self.height}, {self.width}, 3) uint8 frame, "
                f"got {rgb.shape} {rgb.dtype}"
            )
        if any(self.pad):
            rgb = np.pad(rgb, ((0, self.pad[0]), (0, self.pad[1]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if self.is_yuv:
            frame = frame.reformat(
                format=self.pix_fmt,
                src_color_range="JPEG",
                dst_colorspace=self.matrix,
                dst_color_range="MPEG",
                interpolation="BICUBIC",  # chroma downsampling
            )
        elif self.pix_fmt != "rgb24":
            frame = frame.reformat(format=self.pix_fmt)
        # Encoders need strictly increasing timestamps; a repeated input pts moves up by one tick.
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
        self._last_pts = pts
        frame.pts, frame.duration, frame.time_base = pts, duration, self.time_base
        if duration:
            self._durations[pts] = duration
        self._mux_encoded(self.stream.encode(frame))
        self.frames_written += 1

    def _mux_encoded(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            # Encoders with B-frames hand durations back in decode order; give each packet the
            # duration of the frame it holds, so a variable frame rate ends exactly as the input.
            duration = self._durations.pop(packet.pts, None)
            if duration:
                packet.duration = duration
            self.container.mux(packet)

    def copy_packet(self, packet: av.Packet) -> None:
        """Remux one audio/subtitle packet of a stream given in ``copy_streams``, unchanged."""
        out = self._copies.get(packet.stream.index)
        if out is None:
            return
        packet.stream = out
        self.container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        if self.container is None:
            return
        try:
            self._mux_encoded(self.stream.encode(None))
        finally:
            self.container.close()
            self.container = None

    def abort(self) -> None:
        """Close without flushing (the file is being discarded)."""
        if self.container is not None:
            with contextlib.suppress(Exception):
                self.container.close()
            self.container = None


class FrameFolderWriter:
    """Write ``(h, w, 3)`` uint8 RGB frames as PNG files into a folder."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.frames_written = 0

    def write(self, rgb: np.ndarray, name: str | None = None) -> None:
        """``name``: the input frame's file name (its stem is kept), else a 6-digit index."""
        stem = Path(name).stem if name else f"{self.frames_written:06d}"
        Image.fromarray(rgb).save(self.folder / f"{stem}.png", compress_level=3)
        self.frames_written += 1

    def copy_packet(self, packet: av.Packet) -> None:
        """Frames only: audio and subtitles cannot be kept in a folder of images."""

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def is_folder_output(path: Path) -> bool:
    """A path without a file extension (or an existing folder) means a folder of PNG frames."""
    return path.is_dir() or path.suffix == ""


def check_output(
    path: Path, *, force: bool, inputs: list[str | os.PathLike | None] | tuple = ()
) -> None:
    """Fail early (before any work) if ``path`` cannot be written, or would lose data: it is,
    holds or lies inside one of ``inputs``, or it exists (without ``force``), or it is a folder
    holding anything but PNG frames (see :func:`afvsr.outputs.check_outputs`)."""
    from afvsr.outputs import FILE, FRAMES, Output, check_outputs

    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {folder}")
    kind = FRAMES if is_folder_output(path) else FILE
    check_outputs([Output(path=path, label="output", kind=kind)], inputs, force=force)


@contextlib.contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """Like ``atomic_path`` for a folder: fill a temporary sibling, then move it into place.

    Temporary folders ``.<name>.<random>.tmp`` (and ``.old``, the replaced folder on its way out)
    left by a killed earlier run are removed first."""
    prefix, _ = temp_affixes(path.parent, path.name, ".tmp")
    for suffix in (".tmp", ".old"):
        remove_stale_temps(path.parent, prefix, suffix)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        tmp.chmod(umask_mode(0o777))
        if path.exists():  # --force: move the old folder aside first, delete it after
            old = Path(tempfile.mkdtemp(prefix=prefix, suffix=".old", dir=path.parent))
            os.replace(path, old / "old")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def open_output(
    path: str | os.PathLike, **video_kwargs
) -> Iterator[VideoWriter | FrameFolderWriter]:
    """Open a writer on a temporary path next to ``path``; rename it onto ``path`` on success.

    ``path`` without an extension is a folder of PNG frames, otherwise a video file whose writer
    gets ``video_kwargs`` (see :class:`VideoWriter`). On any exception, including
    KeyboardInterrupt, the temporary output is removed and ``path`` is left as it was.
    """
    path = Path(path)
    if is_folder_output(path):
        with atomic_folder(path) as tmp:
            writer = FrameFolderWriter(tmp)
            yield writer
        return
    with atomic_path(path) as tmp:
        writer = VideoWriter(tmp, **video_kwargs)
        try:
            yield writer
        except BaseException:
            writer.abort()
            raise
        writer.close()
        tmp.chmod(umask_mode(0o666))
