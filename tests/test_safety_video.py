"""Damaged videos are reported, not silently cut short (#16 §2).

Fixtures are made here with PyAV: a 30-frame clip (25 frames/s, with audio) cut in half as an
MP4 with its index first (faststart) and as Matroska, and Matroska and MP4 files with 2 KB of
garbage in the middle. Without --ignore-errors: exit 2, one line naming the frame reached and
what the container declares, no output. With it: the frames that decode, and a warning.
"""

from __future__ import annotations

import re
from pathlib import Path

import av
import pytest
from safety_helpers import assert_one_error, listing, snapshot
from video_helpers import make_video, read_frames

from afvsr.cli import main
from afvsr.video.reader import VideoReader


def remux(src: Path, dst: Path, **options: str) -> Path:
    """Copy every packet of ``src`` into ``dst`` with muxer ``options`` (e.g. faststart)."""
    with av.open(str(src)) as i, av.open(str(dst), "w", options=options) as o:
        streams = {s.index: o.add_stream_from_template(s) for s in i.streams}
        for packet in i.demux():
            if packet.dts is None:  # the empty flush packets
                continue
            packet.stream = streams[packet.stream.index]
            o.mux(packet)
    return dst


def cut_in_half(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def garbage_mid_file(path: Path) -> Path:
    data = path.read_bytes()
    mid = len(data) // 2
    path.write_bytes(data[:mid] + bytes(range(256)) * 8 + data[mid + 2048 :])
    return path


def damaged(tmp_path: Path, kind: str) -> Path:
    if kind == "mp4 cut in half":
        whole = make_video(tmp_path / "whole.mp4", num_frames=30)
        video = remux(whole, tmp_path / "in.mp4", movflags="+faststart")
        whole.unlink()
        return cut_in_half(video)
    if kind == "mkv cut in half":
        return cut_in_half(make_video(tmp_path / "in.mkv", num_frames=30))
    suffix = ".mkv" if kind == "mkv with garbage" else ".mp4"
    return garbage_mid_file(make_video(tmp_path / f"in{suffix}", num_frames=30))


# (fixture, what the error line says: the frame reached (captured) and what was declared).
# About half of the 30 frames decode (13 to 15 with this FFmpeg); the test reads the number.
CASES = [
    ("mp4 cut in half", r"ends at frame (\d+) of the 30 declared"),
    ("mkv cut in half", r"ends at frame (\d+) \(\d\.\d\d s\), but the container declares 1\.20 s"),
    ("mkv with garbage", r"ends at frame (\d+) \(\d\.\d\d s\), but the container declares 1\.20 s"),
    ("mp4 with garbage", r"cannot be decoded at frame (\d+) of 30"),
]


def frame_reached(line: str, pattern: str) -> int:
    match = re.search(pattern, line)
    assert match, f"{pattern!r} not in {line!r}"
    reached = int(match.group(1))
    assert 5 <= reached <= 25, line  # about half of the 30 frames decode
    return reached


@pytest.mark.parametrize("kind, pattern", CASES)
def test_damaged_video_fails_with_one_line_and_no_output(tmp_path, capsys, kind, pattern):
    src = damaged(tmp_path, kind)
    before, files = listing(tmp_path), snapshot(src)
    for out in ("out.mkv", "frames"):
        argv = ["upscale", str(src), "-o", str(tmp_path / out), "--model", "bicubic", "--quiet"]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert_one_error(err, f"{src}: ", "--ignore-errors")
        frame_reached(err, pattern)
        assert listing(tmp_path) == before  # no output, no temporary file
    assert snapshot(src) == files


@pytest.mark.parametrize("kind, pattern", CASES)
def test_ignore_errors_writes_what_decodes_and_warns(tmp_path, capsys, kind, pattern):
    src = damaged(tmp_path, kind)
    files = snapshot(src)
    out = tmp_path / "out.mkv"
    argv = ["upscale", str(src), "-o", str(out), "--model", "bicubic", "--quiet"]
    assert main(argv) == 2
    reached = frame_reached(capsys.readouterr().err, pattern)
    assert main([*argv, "--ignore-errors"]) == 0
    captured = capsys.readouterr()
    warning = captured.err.splitlines()
    assert len(warning) == 1 and warning[0].startswith(f"afvsr: warning: {src}: ")
    assert f"kept the {reached} frames that decode" in warning[0]
    assert captured.out.startswith(f"wrote {out}: {reached} frames")
    assert len(read_frames(out)[0]) == reached
    assert snapshot(src) == files


def test_complete_videos_are_not_flagged(tmp_path):
    """Every kind of intact input the damage checks look at: frame counts (mp4), per-stream
    durations (mkv), audio longer than the video (mkv), variable frame rate."""
    vfr = [0, 40, 80, 200, 240, 300, 310, 400, 440, 520]
    videos = [
        make_video(tmp_path / "a.mp4", num_frames=30),
        make_video(tmp_path / "b.mkv", num_frames=30),
        make_video(tmp_path / "c.mkv", num_frames=5, audio=False),
        make_video(tmp_path / "d.mkv", num_frames=10, pts=vfr),
        make_video(tmp_path / "e.mp4", num_frames=10, pts=vfr),
    ]
    for video in videos:
        with VideoReader(video) as reader:
            n = sum(1 for _ in reader.frames())
        assert n == len(read_frames(video)[0]) and reader.damage is None, video.name
