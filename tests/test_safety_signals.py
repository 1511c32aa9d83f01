"""Interruptions of `afvsr upscale` (#16 §5): SIGTERM behaves like Ctrl-C, and the temporary
files of a SIGKILLed run are removed by the next run that writes the same output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from safety_helpers import assert_one_error, listing, snapshot
from video_helpers import make_video, read_frames

from afvsr.cli import main

# Runs `afvsr upscale` with frame decoding slowed down, touching READY once frames flow.
# SIGINT is set to raise KeyboardInterrupt as in a terminal (a background shell ignores it).
SLOW_UPSCALE = """
import pathlib, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
import afvsr.video.reader as reader
ready, argv = pathlib.Path(sys.argv[1]), sys.argv[2:]
to_tensor = reader.to_tensor
def slow(rgb):
    ready.touch()
    time.sleep(0.05)
    return to_tensor(rgb)
reader.to_tensor = slow
from afvsr.cli import main
sys.exit(main(argv))
"""


@pytest.mark.parametrize(
    "sig, status, name, out",
    [(signal.SIGTERM, 143, "SIGTERM", "out.mkv"), (signal.SIGINT, 130, "Ctrl-C", "frames")],
    ids=["sigterm-video", "sigint-frames"],
)
def test_signal_mid_upscale_removes_temp_files(tmp_path, sig, status, name, out):
    src = make_video(tmp_path / "in.mkv", num_frames=200, width=16, height=16, audio=False)
    files, before = snapshot(src), listing(tmp_path)
    ready = tmp_path.parent / f"{tmp_path.name}.ready"
    argv = ["upscale", str(src), "-o", str(tmp_path / out), "--model", "bicubic", "--quiet"]
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_UPSCALE, str(ready), *argv, "--chunk", "2", "--overlap", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # a few chunks written to the temporary output
    assert proc.poll() is None, proc.stderr.read()
    assert any(p.startswith(".") for p in listing(tmp_path))  # the temporary output exists
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status
    assert_one_error(err, f"interrupted by {name}")
    assert listing(tmp_path) == before and snapshot(src) == files


def test_stale_temp_files_of_a_killed_run_are_removed(tmp_path, capsys):
    src = make_video(tmp_path / "in.mkv", num_frames=2, audio=False)
    old = time.time() - 3600
    stale = [tmp_path / ".out.k3j_x9a2.tmp.mkv", tmp_path / ".frames.ab12cd34.tmp"]
    stale.append(tmp_path / ".frames.zz99yy88.old")
    kept = [
        tmp_path / ".out.short.tmp.mkv",  # not afvsr's pattern (8 random characters)
        tmp_path / ".other.k3j_x9a2.tmp.mkv",  # another output's
        tmp_path / ".out.newer123.tmp.mkv",  # newer than this run: a concurrent run's
    ]
    for path in stale + kept:
        if path.suffix in (".tmp", ".old"):
            path.mkdir()
            (path / "000000.png").write_bytes(b"half")
        else:
            path.write_bytes(b"half a video")
    for path in stale + kept[:2]:
        os.utime(path, (old, old))
    for out in ("out.mkv", "frames"):
        argv = ["upscale", str(src), "-o", str(tmp_path / out), "--model", "bicubic", "--quiet"]
        assert main(argv) == 0
    capsys.readouterr()
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)
    assert len(read_frames(tmp_path / "out.mkv")[0]) == 2
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["000000.png", "000001.png"]
