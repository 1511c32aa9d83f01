"""No command writes onto or into its inputs, and --force replaces only what afvsr writes (#16 §1).

Each case: exit 2, one line `afvsr: error: ...` saying what was refused, inputs byte-identical,
nothing written.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image
from safety_helpers import assert_one_error, listing, make_sequences, results_json, snapshot
from video_helpers import make_video

import afvsr
from afvsr.cli import main
from afvsr.demo import is_demo_png, is_demo_video
from afvsr.errors import AfvsrError
from afvsr.models import BasicVSR
from afvsr.outputs import CLIP_FRAMES, FRAMES, Output, check_outputs


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "m.safetensors"
    afvsr.save_model(BasicVSR(mid_channels=4, num_blocks=0, scale=4), path)
    return path


def refused(capsys, tmp_path, argv, *fragments, inputs=()):
    """Run ``argv``; it must exit 2 with one line holding ``fragments`` and change nothing."""
    before, files = listing(tmp_path), snapshot(*inputs) if inputs else {}
    assert main([str(a) for a in argv]) == 2
    assert_one_error(capsys.readouterr().err, *fragments)
    assert listing(tmp_path) == before
    if inputs:
        assert snapshot(*inputs) == files


def test_table_out_onto_its_results_file(tmp_path, capsys):
    ok = results_json(tmp_path / "ok.json")
    refused(capsys, tmp_path, ["table", ok, "--out", ok], f"--out {ok} is the input", inputs=[ok])


def test_table_out_through_a_symlink_and_dotdot(tmp_path, capsys):
    ok = results_json(tmp_path / "ok.json")
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.csv").symlink_to(ok)
    refused(capsys, tmp_path, ["table", ok, "--out", tmp_path / "link.csv"], "is the input")
    dotdot = tmp_path / "sub" / ".." / "ok.json"
    refused(capsys, tmp_path, ["table", ok, "--out", dotdot], "is the input", inputs=[ok])


def test_table_replaces_its_own_csv_and_another_file_only_with_force(tmp_path, capsys):
    ok, out = results_json(tmp_path / "ok.json"), tmp_path / "table.csv"
    assert main(["table", str(ok), "--out", str(out)]) == 0
    assert out.read_text().startswith("Method,Modality,Params (M),PSNR,SSIM,ms/frame\n")
    out.write_text(out.read_text().replace("Bicubic", "Old"))  # an earlier table: replaced
    assert main(["table", str(ok), "--out", str(out)]) == 0
    assert "Bicubic" in out.read_text() and "Old" not in out.read_text()
    out.write_text("name,score\nmine,1\n")  # the user's own CSV: kept
    capsys.readouterr()
    refused(capsys, tmp_path, ["table", ok, "--out", out], f"output exists: {out}", "--force")
    assert out.read_text() == "name,score\nmine,1\n"
    assert main(["table", str(ok), "--out", str(out), "--force"]) == 0
    assert "Bicubic" in out.read_text()


def test_figures_replace_their_own_png_and_another_file_only_with_force(tmp_path, capsys):
    log, out = tmp_path / "metrics.jsonl", tmp_path / "curves.png"
    log.write_text(json.dumps({"step": 1, "loss": 0.5}) + "\n")
    argv = ["figures", "curves", str(log), "--out", str(out), "--dpi", "20"]
    assert main(argv) == 0 and Image.open(out).info["Software"] == "afvsr figures"
    assert main(argv) == 0  # its own earlier figure: replaced
    Image.new("RGB", (3, 2), (9, 9, 9)).save(out)  # the user's own PNG (no afvsr tag): kept
    mine = out.read_bytes()
    capsys.readouterr()
    refused(capsys, tmp_path, argv, f"output exists: {out}", "--force", inputs=[log])
    assert out.read_bytes() == mine
    assert main([*argv, "--force"]) == 0
    assert Image.open(out).size != (3, 2)


def test_figures_curves_out_onto_the_training_log(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    log = run / "metrics.jsonl"
    log.write_text(json.dumps({"step": 1, "loss": 0.5}) + "\n")
    refused(
        capsys, tmp_path, ["figures", "curves", log, "--out", log], "is the input", inputs=[log]
    )
    # The run folder given instead of the log: the log inside it is still the input.
    refused(
        capsys, tmp_path, ["figures", "curves", run, "--out", log], "is the input", inputs=[log]
    )


def test_figures_out_as_a_hard_link_to_the_log(tmp_path, capsys):
    log = tmp_path / "metrics.jsonl"
    log.write_text(json.dumps({"step": 1, "loss": 0.5}) + "\n")
    os.link(log, tmp_path / "curves.png")
    refused(
        capsys, tmp_path, ["figures", "curves", log, "--out", tmp_path / "curves.png"],
        "is the input", inputs=[log],
    )  # fmt: skip


def test_eval_out_onto_the_model(tmp_path, capsys, model_file):
    data = make_sequences(tmp_path / "gt")
    argv = ["eval", "--model", model_file, "--data", data, "--out", model_file, "--force"]
    refused(capsys, tmp_path, argv, f"--out {model_file} is the input", inputs=[model_file, data])


@pytest.mark.parametrize(
    "target, message",
    [
        ("gt", "is the input"),
        ("gt/../gt", "is the input"),
        ("gt_link", "is the input"),  # a symlink to the data folder
        ("gt/clip0", "is inside the input folder"),
        (".", "holds the input"),
    ],
)
def test_eval_save_frames_into_the_ground_truth(tmp_path, capsys, target, message):
    data = make_sequences(tmp_path / "gt", clips=2)
    (tmp_path / "gt_link").symlink_to(data)
    argv = ["eval", "--model", "bicubic", "--data", data, "--save-frames", tmp_path / target]
    refused(capsys, tmp_path, [*argv, "--force"], message, inputs=[data])


def test_eval_json_and_csv_never_share_a_path(tmp_path, capsys):
    data = make_sequences(tmp_path / "gt")
    argv = ["eval", "--model", "bicubic", "--data", data, "--out", tmp_path / "r.csv"]
    refused(capsys, tmp_path, argv, "would both be written to", "give --out a .json name")


def test_eval_keeps_earlier_results_unless_force(tmp_path, capsys):
    data = make_sequences(tmp_path / "gt")
    out, frames = tmp_path / "r.json", tmp_path / "frames"
    argv = ["eval", "--model", "bicubic", "--data", data, "--out", out, "--save-frames", frames]
    assert main([str(a) for a in argv]) == 0
    capsys.readouterr()
    earlier = snapshot(out, tmp_path / "r.csv", frames)
    assert sorted(p.name for p in (frames / "clip0").iterdir()) == [
        f"{i:08d}.png" for i in range(3)
    ]
    refused(capsys, tmp_path, argv, f"output exists: {out}", "--force", inputs=[data])
    argv_frames = ["eval", "--model", "bicubic", "--data", data, "--save-frames", frames]
    refused(capsys, tmp_path, argv_frames, f"output exists: {frames}", inputs=[data])
    assert snapshot(out, tmp_path / "r.csv", frames) == earlier
    assert main([str(a) for a in [*argv, "--force"]]) == 0
    assert json.loads(out.read_text())["dataset"]["num_clips"] == 1


def test_eval_force_does_not_write_into_a_folder_of_other_files(tmp_path, capsys):
    data = make_sequences(tmp_path / "gt")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "holiday.jpg").write_bytes(b"precious")
    argv = ["eval", "--model", "bicubic", "--data", data, "--save-frames", photos, "--force"]
    refused(capsys, tmp_path, argv, f"{photos} holds 'holiday.jpg'", "even with --force")


def test_export_onto_the_model_with_force(tmp_path, capsys, model_file):
    argv = ["export", model_file, "--onnx", model_file, "--force"]
    refused(capsys, tmp_path, argv, f"--onnx {model_file} is the input", inputs=[model_file])
    os.link(model_file, tmp_path / "m.onnx")  # the same file under another name
    argv = ["export", model_file, "--onnx", tmp_path / "m.onnx", "--force"]
    refused(capsys, tmp_path, argv, "is the input", inputs=[model_file])


def test_demo_output_onto_the_model(tmp_path, capsys, model_file):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "comparison.png").symlink_to(model_file)
    argv = ["demo", "-o", out, "--model", model_file, "--frames", "2", "--quiet"]
    refused(capsys, tmp_path, argv, "comparison.png is the input", inputs=[model_file])


def test_demo_replaces_its_own_files_and_a_users_file_only_with_force(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "-o", out, "--model", "bicubic", "--frames", "2", "--size", "16x12", "--quiet"]
    assert main([str(a) for a in argv]) == 0  # an earlier demo's two files, tagged as its own ...
    video, png = out / "side_by_side.mp4", out / "comparison.png"
    assert is_demo_video(video) and is_demo_png(png)
    earlier = [tmp_path / f"earlier_{p.name}" for p in (video, png)]
    for path, link in zip((video, png), earlier, strict=True):
        os.link(path, link)  # holds the earlier file (and its inode) to compare with
    assert main([str(a) for a in argv]) == 0  # ... are replaced (renamed over) by the next run
    assert not any(os.path.samefile(p, e) for p, e in zip((video, png), earlier, strict=True))
    assert is_demo_video(video) and is_demo_png(png)
    for link in earlier:
        link.unlink()
    for name in ("side_by_side.mp4", "comparison.png"):
        mine = out / name  # a user's files of the demo's names: a real video, a real PNG
        if name.endswith(".mp4"):
            make_video(mine, num_frames=2, audio=False)
        else:
            Image.new("RGB", (8, 8), "red").save(mine)
        kept = mine.read_bytes()
        refused(capsys, tmp_path, argv, f"output exists: {mine}", "--force", inputs=[mine])
        assert main([str(a) for a in [*argv, "--force"]]) == 0 and mine.read_bytes() != kept


def test_upscale_force_refuses_a_folder_it_did_not_write(tmp_path, capsys):
    src = make_video(tmp_path / "in.mkv", num_frames=2, audio=False)
    videos = tmp_path / "Videos"
    (videos / "2019").mkdir(parents=True)
    (videos / "2019" / "wedding.mp4").write_bytes(b"irreplaceable")
    (videos / "notes.txt").write_text("mine")
    argv = ["upscale", src, "-o", videos, "--force", "--model", "bicubic", "--quiet"]
    refused(capsys, tmp_path, argv, f"output {videos} holds", "even with --force", inputs=[videos])


def test_upscale_force_replaces_its_own_frame_folder(tmp_path, capsys):
    src = make_video(tmp_path / "in.mkv", num_frames=2, audio=False)
    out = tmp_path / "frames"
    out.mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(out / "old.png")
    argv = ["upscale", str(src), "-o", str(out), "--model", "bicubic", "--quiet"]
    refused(capsys, tmp_path, argv, f"output exists: {out}", "--force")
    assert main([*argv, "--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["000000.png", "000001.png"]


def test_upscale_output_folder_holding_the_input(tmp_path, capsys):
    folder = tmp_path / "clips"
    folder.mkdir()
    src = make_video(folder / "in.mkv", num_frames=2, audio=False)
    argv = ["upscale", src, "-o", folder, "--force", "--model", "bicubic", "--quiet"]
    refused(capsys, tmp_path, argv, f"output {folder} holds the input", inputs=[src])


def test_upscale_output_onto_the_model_through_a_symlink(tmp_path, capsys, model_file):
    src = make_video(tmp_path / "in.mkv", num_frames=2, audio=False)
    (tmp_path / "out.mkv").symlink_to(model_file)
    argv = ["upscale", src, "-o", tmp_path / "out.mkv", "--model", model_file, "--force", "--quiet"]
    refused(capsys, tmp_path, argv, "is the input", inputs=[src, model_file])


def test_table_out_onto_a_fifo_is_refused(tmp_path, capsys):
    ok = results_json(tmp_path / "ok.json")
    os.mkfifo(tmp_path / "pipe.csv")
    argv = ["table", ok, "--out", tmp_path / "pipe.csv"]
    refused(capsys, tmp_path, argv, "is not a regular file", inputs=[ok])


def test_check_outputs_accepts_afvsrs_own_frames_only():
    """The folder test itself: what counts as afvsr's frame outputs."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        flat, clips = root / "flat", root / "clips" / "seq" / "a"
        flat.mkdir()
        clips.mkdir(parents=True)
        (flat / "im1.png").write_bytes(b"x")
        (clips / "00000000.png").write_bytes(b"x")
        check_outputs([Output(path=flat, kind=FRAMES)], [], force=True)
        check_outputs([Output(path=root / "clips", kind=CLIP_FRAMES)], [], force=True)
        (clips / "notes.txt").write_bytes(b"x")
        with pytest.raises(AfvsrError, match="holds 'notes.txt'"):
            check_outputs([Output(path=root / "clips", kind=CLIP_FRAMES)], [], force=True)
        (flat / "sub").mkdir()
        with pytest.raises(AfvsrError, match="holds 'sub'"):
            check_outputs([Output(path=flat, kind=FRAMES)], [], force=True)


def test_eval_out_as_a_hard_link_to_a_ground_truth_frame(tmp_path, capsys):
    data = make_sequences(tmp_path / "gt")
    frame = data / "clip0" / "00000001.png"
    os.link(frame, tmp_path / "r.json")
    argv = ["eval", "--model", "bicubic", "--data", data, "--out", tmp_path / "r.json", "--force"]
    refused(capsys, tmp_path, argv, f"is the input {frame} (a hard link)", inputs=[data])
