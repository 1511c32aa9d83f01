"""Every failure a user can cause is one line, `afvsr: error: ...`, exit 2 (#16 §3).

File-system errors root cannot provoke on a normal folder (tests often run as root) are raised
by a patched function at the point the file system would raise them.
"""

from __future__ import annotations

import errno
import json
import os

import pytest
from safety_helpers import assert_one_error, listing, make_sequences, results_json, snapshot
from video_helpers import make_video, read_frames

from afvsr.cli import main
from afvsr.io_utils import atomic_path, name_max
from afvsr.video import writer


def run(capsys, argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_read_only_file_system_is_one_line(tmp_path, capsys, monkeypatch):
    ok = results_json(tmp_path / "ok.json")
    files, before = snapshot(ok), listing(tmp_path)

    def read_only(*args, dir=None, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))

    monkeypatch.setattr("afvsr.io_utils.tempfile.mkstemp", read_only)
    code, err = run(capsys, ["table", ok, "--out", tmp_path / "t.csv"])
    assert code == 2
    assert_one_error(err, f"{tmp_path}: Read-only file system")
    assert listing(tmp_path) == before and snapshot(ok) == files


def test_permission_denied_mid_upscale_leaves_nothing(tmp_path, capsys, monkeypatch):
    src = make_video(tmp_path / "in.mkv", num_frames=4, audio=False)
    files, before = snapshot(src), listing(tmp_path)
    save = writer.Image.Image.save

    def denied(self, path, *args, **kwargs):
        if str(path).endswith("000002.png"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return save(self, path, *args, **kwargs)

    monkeypatch.setattr(writer.Image.Image, "save", denied)
    argv = ["upscale", src, "-o", tmp_path / "frames", "--model", "bicubic", "--quiet"]
    code, err = run(capsys, [*argv, "--chunk", "1", "--overlap", "0"])
    assert code == 2
    assert_one_error(err, "000002.png: Permission denied")
    assert listing(tmp_path) == before and snapshot(src) == files


def test_disk_full_mid_upscale_leaves_nothing(tmp_path, capsys, monkeypatch):
    src = make_video(tmp_path / "in.mkv", num_frames=6, audio=False)
    files, before = snapshot(src), listing(tmp_path)
    write = writer.VideoWriter.write

    def full(self, *args, **kwargs):
        if self.frames_written == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
        return write(self, *args, **kwargs)

    monkeypatch.setattr(writer.VideoWriter, "write", full)
    argv = ["upscale", src, "-o", tmp_path / "out.mkv", "--model", "bicubic", "--quiet"]
    code, err = run(capsys, [*argv, "--chunk", "2", "--overlap", "0"])
    assert code == 2
    assert_one_error(err, "No space left on device")
    assert listing(tmp_path) == before and snapshot(src) == files


def test_save_frames_under_a_regular_file_is_one_line(tmp_path, capsys):
    """A real OSError, also as root: a folder cannot be made inside a file. Found before any
    work (nothing else on stderr)."""
    data = make_sequences(tmp_path / "gt")
    (tmp_path / "notes.txt").write_text("mine")
    files, before = snapshot(data, tmp_path / "notes.txt"), listing(tmp_path)
    argv = ["eval", "--model", "bicubic", "--data", data, "--save-frames", tmp_path / "notes.txt/x"]
    code, err = run(capsys, argv)
    assert code == 2
    assert_one_error(err, f"{tmp_path / 'notes.txt'}: Not a directory")
    assert listing(tmp_path) == before and snapshot(data, tmp_path / "notes.txt") == files


def test_longest_file_name_works_and_one_more_byte_is_one_line(tmp_path, capsys):
    """The temporary name stays within the name limit whenever the final name does."""
    src = make_video(tmp_path / "in.mkv", num_frames=2, audio=False)
    limit = name_max(tmp_path)
    longest = tmp_path / ("v" * (limit - 4) + ".mkv")
    argv = ["upscale", src, "--model", "bicubic", "--quiet", "-o"]
    code, err = run(capsys, [*argv, longest])
    assert code == 0 and err == ""
    assert len(read_frames(longest)[0]) == 2
    too_long = tmp_path / ("w" * (limit - 3) + ".mkv")
    files, before = snapshot(src), listing(tmp_path)
    code, err = run(capsys, [*argv, too_long])
    assert code == 2
    assert_one_error(err, "File name too long")
    assert listing(tmp_path) == before and snapshot(src) == files


def test_atomic_path_temp_names_fit_the_limit(tmp_path):
    limit = name_max(tmp_path)
    for name in ("é" * ((limit - 4) // 2) + ".png", "x" * (limit - 4) + ".png"):
        target = tmp_path / name
        assert len(os.fsencode(name)) <= limit
        with atomic_path(target) as tmp:
            assert len(os.fsencode(tmp.name)) <= limit and tmp.name.endswith(".tmp.png")
            tmp.write_bytes(b"done")
        assert target.read_bytes() == b"done"


def test_a_folder_given_to_table_is_one_line(tmp_path, capsys):
    (tmp_path / "results").mkdir()
    code, err = run(capsys, ["table", tmp_path / "results", "--out", tmp_path / "t.csv"])
    assert code == 2
    assert_one_error(err, f"{tmp_path / 'results'} is a folder; expected a results JSON file")
    assert listing(tmp_path) == ["results"]


@pytest.mark.parametrize(
    "override, message",
    [
        ({"mean": {"psnr_rgb": 26.0}}, "the results have no 'mean.ssim_rgb'"),
        ({"mean": [1, 2]}, "'mean' should be an object"),
        ({"model": {"name": "bicubic", "params": "many"}}, "'model.params' should be a number"),
        ({"model": {"params": 0}}, "the results have no 'model.name'"),
        ({"dataset": {"name": "REDS4", "num_clips": "4"}}, "'dataset.num_clips' should be an"),
        ({"window": "five"}, "'window' should be an integer or null"),
        ({"mean": None}, "'mean' should be an object"),
    ],
)
def test_results_with_missing_or_odd_fields_are_one_line(tmp_path, capsys, override, message):
    bad = results_json(tmp_path / "bad.json", **override)
    files = snapshot(bad)
    code, err = run(capsys, ["table", bad, "--out", tmp_path / "t.csv"])
    assert code == 2
    assert_one_error(err, f"{bad}: {message}")
    assert snapshot(bad) == files and not (tmp_path / "t.csv").exists()


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "gpu0"])
def test_unknown_device_is_one_line(tmp_path, capsys, device):
    data = make_sequences(tmp_path / "gt")
    files = snapshot(data)
    code, err = run(capsys, ["eval", "--model", "bicubic", "--data", data, "--device", device])
    assert code == 2
    assert_one_error(err, f"expected device cpu, cuda, cuda:N or auto, got {device!r}")
    assert snapshot(data) == files


@pytest.mark.parametrize(
    "argv, message",
    [
        (["upscale", "in.mkv", "--crf", "best"], "argument --crf: invalid int value: 'best'"),
        (["export", "m.safetensors"], "the following arguments are required: --onnx"),
        (["upscale", "in.mkv", "--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
        (["figures"], "the following arguments are required: FIGURE"),
        (["figures", "curves", "--dpi", "x", "log"], "argument --dpi: invalid int value: 'x'"),
        (["nonsense"], "argument COMMAND: invalid choice: 'nonsense'"),
        (["eval", "--data", "d", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_command_line_mistakes_are_one_line(capsys, argv, message):
    code, err = run(capsys, argv)
    assert code == 2
    assert_one_error(err, message, "--help")


def test_help_still_prints_help(capsys):
    assert main(["upscale", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: afvsr upscale") and "--ignore-errors" in out


def test_a_log_that_is_not_text_names_the_file(tmp_path, capsys):
    log = tmp_path / "metrics.jsonl"
    log.write_bytes(json.dumps({"step": 1, "loss": 0.5}).encode() + b"\n\x89PNG\x00\xff\n")
    files = snapshot(log)
    code, err = run(capsys, ["figures", "curves", log, "--out", tmp_path / "c.png"])
    assert code == 2
    assert_one_error(err, f"{log}: not UTF-8 text")
    assert snapshot(log) == files and not (tmp_path / "c.png").exists()
