"""Small synthetic videos for the video tests, written with PyAV (no external files)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

ASS_HEADER = (
    b"[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\nFormat: Name, Fontname, Fontsize\n"
    b"Style: Default,Arial,16\n\n[Events]\nFormat: Layer, Start, End, Style, Text\n"
)


def pattern(t: int, h: int, w: int, *, scale: float = 1.0) -> np.ndarray:
    """A smooth moving colour pattern ``(h, w, 3)`` float in [0.1, 0.9], sampled at pixel centres.

    ``scale`` samples the same continuous pattern on a grid ``scale`` times finer (what an ideal
    upscaler would produce from the coarse version).
    """
    y = (np.arange(h) + 0.5) / scale
    x = (np.arange(w) + 0.5) / scale
    yy, xx = np.meshgrid(y, x, indexing="ij")
    r = 0.5 + 0.4 * np.sin(2 * np.pi * (xx / 23.0 + 0.05 * t))
    g = 0.5 + 0.4 * np.cos(2 * np.pi * (yy / 19.0 - 0.03 * t))
    b = 0.5 + 0.4 * np.sin(2 * np.pi * ((xx + yy) / 31.0))
    return np.stack([r, g, b], axis=-1)


def make_video(
    path: Path,
    *,
    num_frames: int = 8,
    width: int = 37,
    height: int = 29,
    pts: list[int] | None = None,
    time_base: Fraction = Fraction(1, 1000),
    fps: int = 25,
    audio: bool = True,
    subtitles: bool = False,
    rotation: int = 0,
    codec: str = "libx264",
    pix_fmt: str = "yuv444p",
    frames: list[np.ndarray] | None = None,
) -> Path:
    """Write a test video: the moving :func:`pattern` (or ``frames``, uint8 RGB), near-lossless.

    ``pts`` gives each frame's timestamp in ``time_base`` (variable frame rate); by default
    frames are ``1/fps`` apart. ``audio`` adds a mono AAC sine track as long as the video.
    ``subtitles`` adds a text subtitle stream (subrip in mkv, mov_text in mp4).
    """
    if pts is None:
        pts = [round(i / (fps * time_base)) for i in range(num_frames)]
    if frames is None:
        frames = [
            (pattern(i, height, width) * 255).round().astype(np.uint8) for i in range(num_frames)
        ]
    out = av.open(str(path), "w")
    video = out.add_stream(codec, rate=fps)
    video.width, video.height, video.pix_fmt = width, height, pix_fmt
    video.time_base = time_base
    video.codec_context.time_base = time_base
    if codec == "libx264":
        video.codec_context.options = {"qp": "0"}  # lossless: tests compare pixels
    if rotation:
        video.set_display_rotation(rotation)
    sound = out.add_stream("aac", rate=16000, layout="mono") if audio else None
    text = None
    if subtitles:
        text = out.add_stream("subrip" if path.suffix == ".mkv" else "mov_text")
        text.codec_context.subtitle_header = ASS_HEADER  # text subtitle encoders need one
        text.time_base = Fraction(1, 1000)
    for frame_rgb, p in zip(frames, pts, strict=True):
        frame = av.VideoFrame.from_ndarray(frame_rgb, format="rgb24")
        frame.pts, frame.time_base = p, time_base
        for packet in video.encode(frame):
            out.mux(packet)
    for packet in video.encode():
        out.mux(packet)
    if sound is not None:
        seconds = float((pts[-1] + round(1 / (fps * time_base))) * time_base)
        n = int(seconds * 16000)
        signal = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 16000)).astype(np.float32)
        for start in range(0, n, 1024):
            chunk = np.ascontiguousarray(signal[None, start : start + 1024])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 16000, start, Fraction(1, 16000)
            for packet in sound.encode(frame):
                out.mux(packet)
        for packet in sound.encode():
            out.mux(packet)
    if text is not None:
        for k, line in enumerate([b"hello", b"world"]):
            # Packets are muxed as they are; mov_text wants a 16-bit length before the text.
            data = line if path.suffix == ".mkv" else len(line).to_bytes(2, "big") + line
            packet = av.Packet(data)
            packet.stream = text
            packet.pts = packet.dts = 100 + 200 * k
            packet.duration = 150
            packet.time_base = Fraction(1, 1000)
            out.mux(packet)
    out.close()
    return path


def read_frames(path: Path) -> tuple[list[np.ndarray], list[int], Fraction]:
    """Decode a video: RGB uint8 frames (with its own colour tags), pts, and time base."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames, pts = [], []
        for frame in c.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            pts.append(frame.pts)
        return frames, pts, stream.time_base


def end_time(path: Path) -> float:
    """When the video stream's last frame stops showing (s): max of pts + duration over packets.

    Exact for Matroska, which stores each frame's duration; in MP4, durations are derived from
    decode-time gaps, so with B-frames this is only right to within a frame.
    """
    with av.open(str(path)) as c:
        return max(float((p.pts + p.duration) * p.time_base) for p in c.demux(video=0) if p.size)


def packets(path: Path, kind: str) -> list[tuple[bytes, float | None]]:
    """Bytes and time (s) of every packet of the first ``kind`` ("audio"/"subtitle") stream."""
    with av.open(str(path)) as c:
        stream = getattr(c.streams, {"audio": "audio", "subtitle": "subtitles"}[kind])[0]
        return [
            (bytes(p), float(p.pts * p.time_base) if p.pts is not None else None)
            for p in c.demux(stream)
            if p.size
        ]


class Upsample(nn.Module):
    """Stand-in model with no temporal reach: bilinear upsampling of each frame."""

    def __init__(self, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale
        self.kwargs = {"scale": scale}

    def forward(self, lq: Tensor) -> Tensor:
        """``(b, t, 3, h, w) -> (b, t, 3, s*h, s*w)``."""
        b, t, c, h, w = lq.shape
        up = F.interpolate(lq.reshape(b * t, c, h, w), scale_factor=self.scale, mode="nearest")
        return up.reshape(b, t, c, self.scale * h, self.scale * w)


class Recurrent(nn.Module):
    """Stand-in "recurrent" model: every output frame depends on every input frame.

    A forward and a backward exponential moving average (decay ``decay`` per frame) of the
    frames, mixed into the frame itself, then nearest upsampling: the influence of a frame
    ``d`` frames away falls off like ``decay**d``, as information does in bidirectional
    propagation.
    """

    def __init__(self, scale: int = 4, decay: float = 0.5) -> None:
        super().__init__()
        self.scale, self.decay = scale, decay
        self.kwargs = {"scale": scale}

    def forward(self, lq: Tensor) -> Tensor:
        """``(b, t, 3, h, w) -> (b, t, 3, s*h, s*w)``."""
        b, t, c, h, w = lq.shape
        fwd, bwd = [], [None] * t
        state = lq[:, 0]
        for i in range(t):
            state = self.decay * state + (1 - self.decay) * lq[:, i]
            fwd.append(state)
        state = lq[:, -1]
        for i in reversed(range(t)):
            state = self.decay * state + (1 - self.decay) * lq[:, i]
            bwd[i] = state
        mixed = torch.stack([(f + g) / 2 for f, g in zip(fwd, bwd, strict=True)], dim=1)
        up = F.interpolate(mixed.reshape(b * t, c, h, w), scale_factor=self.scale, mode="nearest")
        return up.reshape(b, t, c, self.scale * h, self.scale * w)


class Explode(nn.Module):
    """Stand-in model that raises after ``after`` calls (an interruption mid-way)."""

    def __init__(self, after: int, exc: type[BaseException] = RuntimeError, scale: int = 4) -> None:
        super().__init__()
        self.scale, self.after, self.exc, self.calls = scale, after, exc, 0
        self.kwargs = {"scale": scale}

    def forward(self, lq: Tensor) -> Tensor:
        self.calls += 1
        if self.calls > self.after:
            raise self.exc("boom")
        b, t, c, h, w = lq.shape
        up = F.interpolate(lq.reshape(b * t, c, h, w), scale_factor=self.scale, mode="nearest")
        return up.reshape(b, t, c, self.scale * h, self.scale * w)
