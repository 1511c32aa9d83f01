"""`afvsr upscale` / `afvsr.upscale_video` end to end on small generated videos."""

from __future__ import annotations

import hashlib
import weakref

import av
import numpy as np
import pytest
import torch
from PIL import Image
from video_helpers import (
    Explode,
    Recurrent,
    Upsample,
    end_time,
    make_video,
    packets,
    pattern,
    read_frames,
)

import afvsr
import afvsr.video.upscale as upscale
from afvsr.cli import main
from afvsr.errors import AfvsrError
from afvsr.evaluation.metrics import psnr
from afvsr.imresize import imresize
from afvsr.models import AFVSR, BasicVSR, Bicubic
from afvsr.video.upscale import default_output, default_overlap

VFR_PTS = [0, 40, 80, 200, 240, 300, 310, 400, 440, 520]  # ms


def frames_tensor(frames: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_upscale_keeps_frames_timing_audio_subtitles_rotation(tmp_path):
    src = make_video(tmp_path / "in.mp4", num_frames=10, pts=VFR_PTS, subtitles=True, rotation=90)
    before = digest(src)
    summary = afvsr.upscale_video(src, model="bicubic", chunk=4, overlap=2, quiet=True)
    out = tmp_path / "in_x4.mp4"
    assert summary["output"] == str(out) and summary["frames"] == 10 and summary["chunks"] == 3
    assert digest(src) == before  # the input is only read

    lq, lq_pts, lq_tb = read_frames(src)
    sr, sr_pts, sr_tb = read_frames(out)
    assert len(sr) == 10 and sr[0].shape == (116, 148, 3)
    assert [p * sr_tb for p in sr_pts] == [p * lq_tb for p in lq_pts]  # variable rate kept
    with av.open(str(src)) as a, av.open(str(out)) as b:
        assert b.duration == pytest.approx(a.duration, abs=0.04 * av.time_base)
        assert next(b.decode(video=0)).rotation == 90
    assert packets(out, "audio") == packets(src, "audio")  # same packets, same bytes and times
    text = [p for p in packets(out, "subtitle") if len(p[0]) > 2]  # mp4 adds empty gap samples
    assert text == [p for p in packets(src, "subtitle") if len(p[0]) > 2] and len(text) == 2

    # Picture: the bicubic model's output is the MATLAB bicubic upscale of the decoded input, and
    # close to the smooth pattern itself drawn at 4x; the rest is H.264 (crf 18, 4:2:0 chroma).
    sr = frames_tensor(sr)
    expected = imresize(frames_tensor(lq), scale=4).clamp(0, 1)
    ideal = torch.from_numpy(np.stack([pattern(i, 116, 148, scale=4) for i in range(10)]))
    ideal = ideal.permute(0, 3, 1, 2).float()
    for target in (expected, ideal):
        assert psnr(sr, target, y_channel=True).min().item() > 42
        assert psnr(sr, target).min().item() > 34


def test_upscale_mkv_keeps_every_packet_and_the_end_time(tmp_path):
    src = make_video(tmp_path / "in.mkv", num_frames=10, pts=VFR_PTS, subtitles=True)
    afvsr.upscale_video(src, tmp_path / "out.mkv", model="bicubic", chunk=3, overlap=1, quiet=True)
    out = tmp_path / "out.mkv"
    assert packets(out, "audio") == packets(src, "audio")
    assert packets(out, "subtitle") == packets(src, "subtitle")
    assert end_time(out) == pytest.approx(end_time(src))


def test_cli_summary_refuses_existing_output_then_forces(tmp_path, capsys):
    src = make_video(tmp_path / "in.mkv", num_frames=4, audio=False)
    out = tmp_path / "out.mkv"
    args = ["upscale", str(src), "-o", str(out), "--model", "bicubic", "--quiet"]
    assert main(args) == 0
    summary = capsys.readouterr()
    assert summary.out.startswith(f"wrote {out}: 4 frames 148x116") and summary.err == ""
    first = read_frames(out)[0]
    out.write_bytes(b"keep me")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("afvsr: error: output exists") and err.count("\n") == 1
    assert out.read_bytes() == b"keep me"
    assert main([*args, "--force"]) == 0
    assert all(np.array_equal(a, b) for a, b in zip(read_frames(out)[0], first, strict=True))


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_interruption_leaves_nothing_behind(tmp_path, exc):
    src = make_video(tmp_path / "in.mkv", num_frames=9)
    with pytest.raises(exc):
        afvsr.upscale_video(
            src,
            tmp_path / "out.mp4",
            model=Explode(after=1, exc=exc),
            chunk=3,
            overlap=1,
            quiet=True,
        )
    with pytest.raises(exc):
        afvsr.upscale_video(
            src,
            tmp_path / "frames",
            model=Explode(after=2, exc=exc),
            chunk=3,
            overlap=1,
            quiet=True,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv"]


@pytest.mark.parametrize(
    "make,args,message",
    [
        (lambda d: d / "in.mkv", ["-o", "{d}/missing/out.mp4"], "output folder does not exist"),
        (
            lambda d: d / "in.mkv",
            ["--scale", "2", "--model", "{ckpt}"],
            "upscales x4, but --scale 2",
        ),
        (lambda d: d / "in.mkv", ["--model", "no-such-model"], "no model file or shipped model"),
        (lambda d: d / "in.mkv", ["--precision", "fp16"], "fp16 needs --device cuda"),
        (lambda d: d / "in.mkv", ["-o", "{d}/in.mkv"], "is the input"),
        (
            lambda d: (d / "notes.mp4", (d / "notes.mp4").write_text("hi"))[0],
            [],
            "not a readable video",
        ),
        (lambda d: d / "nothing.mp4", [], "input not found"),
        (lambda d: d / "in.mkv", ["--threads", "0"], "expected --threads >= 1, got 0"),
    ],
)
def test_bad_input_is_one_line_and_leaves_nothing(tmp_path, capsys, make, args, message):
    make_video(tmp_path / "in.mkv", num_frames=2, audio=False)
    ckpt = tmp_path / "tiny.safetensors"
    afvsr.save_model(BasicVSR(mid_channels=4, num_blocks=0, scale=4), ckpt)
    src = make(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = ["upscale", str(src), "--quiet", *[a.format(d=tmp_path, ckpt=ckpt) for a in args]]
    if "--model" not in args:
        argv += ["--model", "bicubic"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("afvsr: error: ") and message in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_threads_flag_runs_the_work_on_n_threads_then_restores(tmp_path, monkeypatch):
    src = make_video(tmp_path / "in.mkv", num_frames=3, audio=False)
    seen, real = [], upscale.upscale_video

    def recording(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(upscale, "upscale_video", recording)
    before = torch.get_num_threads()
    argv = ["upscale", str(src), "--model", "bicubic", "--quiet"]
    assert main([*argv, "-o", str(tmp_path / "one"), "--threads", "1"]) == 0
    assert main([*argv, "-o", str(tmp_path / "default")]) == 0
    assert seen == [1, before] and torch.get_num_threads() == before
    # The same frames (PNG: lossless), up to float rounding of sums split another way.
    one, default = (sorted((tmp_path / d).glob("*.png")) for d in ("one", "default"))
    assert len(one) == len(default) == 3
    for a, b in zip(one, default, strict=True):
        diff = np.abs(np.asarray(Image.open(a), int) - np.asarray(Image.open(b), int))
        assert diff.max() <= 1


def test_frame_folders_in_and_out_keep_names(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (1, 2, 10):
        Image.fromarray(np.full((6, 5, 3), 10 * i, np.uint8)).save(folder / f"im{i}.png")
    summary = afvsr.upscale_video(folder, model=Upsample(), quiet=True)
    out = tmp_path / "frames_x4"
    assert summary["output"] == str(out)
    assert sorted(p.name for p in out.iterdir()) == ["im1.png", "im10.png", "im2.png"]
    assert np.asarray(Image.open(out / "im10.png")).shape == (24, 20, 3)
    assert (np.asarray(Image.open(out / "im10.png")) == 100).all()
    afvsr.upscale_video(folder, tmp_path / "frames.mp4", model=Upsample(), quiet=True)
    frames, pts, tb = read_frames(tmp_path / "frames.mp4")
    assert len(frames) == 3 and [float(p * tb) for p in pts] == [0, 0.04, 0.08]  # 25 frames/s


def test_chunked_output_equals_whole_clip_output(tmp_path):
    """Through the whole pipeline (PNG output: no codec noise)."""
    src = make_video(tmp_path / "in.mkv", num_frames=12, audio=False)
    read = lambda d: np.stack([np.asarray(Image.open(p)) for p in sorted(d.iterdir())])  # noqa: E731
    afvsr.upscale_video(src, tmp_path / "whole", model=Upsample(), chunk=100, quiet=True)
    afvsr.upscale_video(src, tmp_path / "chunked", model=Upsample(), chunk=3, overlap=0, quiet=True)
    assert np.array_equal(read(tmp_path / "whole"), read(tmp_path / "chunked"))
    model = Recurrent(decay=0.4)
    afvsr.upscale_video(src, tmp_path / "rwhole", model=model, chunk=100, quiet=True)
    afvsr.upscale_video(src, tmp_path / "rchunk", model=model, chunk=3, overlap=8, quiet=True)
    diff = read(tmp_path / "rwhole").astype(int) - read(tmp_path / "rchunk").astype(int)
    assert np.abs(diff).max() <= 1  # 0.4**8: below one 8-bit level


def test_tiles_odd_and_tiny_sizes(tmp_path):
    src = make_video(tmp_path / "in.mkv", num_frames=3, audio=False)  # 37x29
    summary = afvsr.upscale_video(
        src, model="bicubic", scale=3, tile=16, tile_overlap=6, quiet=True
    )
    assert summary["output_size"] == (111, 87) and summary["padded"]
    frames, _, _ = read_frames(tmp_path / "in_x3.mkv")
    assert frames[0].shape == (88, 112, 3)  # yuv420p: one repeated row and column
    tiny = make_video(tmp_path / "tiny.mkv", num_frames=2, width=3, height=2, audio=False)
    summary = afvsr.upscale_video(tiny, tmp_path / "tiny_out", model="bicubic", quiet=True)
    assert summary["output_size"] == (12, 8)
    assert np.asarray(Image.open(tmp_path / "tiny_out" / "000001.png")).shape == (8, 12, 3)


class ConvUp(torch.nn.Module):
    """Stand-in with a convolution (autocast runs it in bf16) then nearest upsampling."""

    scale = 4

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = lq.shape
        x = lq.reshape(b * t, c, h, w)
        x = torch.nn.functional.interpolate(x + 0.1 * self.conv(x), scale_factor=4)
        return x.reshape(b, t, c, 4 * h, 4 * w)


def test_bf16_autocast_on_cpu_runs_close_to_fp32(tmp_path):
    src = make_video(tmp_path / "in.mkv", num_frames=3, audio=False)
    model = ConvUp()
    fp32 = afvsr.upscale_video(src, tmp_path / "fp32", model=model, precision="fp32", quiet=True)
    bf16 = afvsr.upscale_video(src, tmp_path / "bf16", model=model, precision="bf16", quiet=True)
    assert (fp32["precision"], bf16["precision"]) == ("fp32", "bf16")
    a = np.asarray(Image.open(tmp_path / "fp32" / "000002.png")).astype(int)
    b = np.asarray(Image.open(tmp_path / "bf16" / "000002.png")).astype(int)
    assert 0 < np.abs(a - b).max() <= 3  # bf16 did run (results differ), and only by rounding


def test_real_models_through_the_pipeline(tmp_path, monkeypatch):
    """BasicVSR and AFVSR (in sequence mode) upscale every frame, in chunks."""
    src = make_video(tmp_path / "in.mkv", num_frames=7, width=20, height=12, audio=False)
    method = AFVSR(mid_channels=4, num_blocks=1, rates=(1, 2), window=3)
    modes = []
    forward = method.forward
    monkeypatch.setattr(
        method,
        "forward",
        lambda lq, *, mode, frames=None: (
            modes.append(mode) or forward(lq, mode=mode, frames=frames)
        ),
    )
    assert (
        default_overlap(method) == 20
        and default_overlap(BasicVSR(mid_channels=4, num_blocks=0)) == 10
        and default_overlap(Bicubic()) == 0
    )
    for name, model in [("basicvsr", BasicVSR(mid_channels=4, num_blocks=1)), ("afvsr", method)]:
        summary = afvsr.upscale_video(
            src, tmp_path / name, model=model, chunk=3, overlap=2, quiet=True
        )
        assert summary["frames"] == 7 and summary["chunks"] == 3
        assert len(list((tmp_path / name).iterdir())) == 7
    assert modes and set(modes) == {"sequence"}


def test_api_rejects_a_scale_mismatch_before_reading(tmp_path):
    with pytest.raises(AfvsrError, match="x4, but --scale 3"):
        afvsr.upscale_video(
            make_video(tmp_path / "in.mkv", num_frames=1), model=Upsample(4), scale=3
        )


def test_default_output_names(tmp_path):
    assert default_output(tmp_path / "a.MP4", 4) == tmp_path / "a_x4.mp4"
    assert default_output(tmp_path / "a.webm", 2) == tmp_path / "a_x2.mkv"  # webm holds no H.264
    assert default_output(tmp_path, 4) == tmp_path.parent / f"{tmp_path.name}_x4"


def test_streams_the_output_container_cannot_hold_are_one_clear_error(tmp_path):
    src = make_video(tmp_path / "in.mkv", num_frames=2, subtitles=True)  # SubRip subtitles
    with pytest.raises(
        AfvsrError, match=r"subtitle stream \((srt|subrip)\).*choose a \.mkv output"
    ):
        afvsr.upscale_video(src, tmp_path / "out.mp4", model="bicubic", quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv"]


def test_a_chunks_output_is_freed_before_the_next_chunk_runs(tmp_path, monkeypatch):
    """A chunk's whole output must be gone (no frame view left behind by the writing loop)
    when the next chunk runs: otherwise two chunks' outputs are held at once, which the
    memory budget does not count."""
    src = make_video(tmp_path / "in.mkv", num_frames=10)
    outputs, alive_at_call = [], []
    original = upscale.upscale_frames

    def recording(*args, **kwargs):
        alive_at_call.append(sum(ref() is not None for ref in outputs))
        buffer = original(*args, **kwargs).numpy().copy()
        outputs.append(weakref.ref(buffer))  # alive while any view of the output is
        return torch.from_numpy(buffer)

    monkeypatch.setattr(upscale, "upscale_frames", recording)
    summary = afvsr.upscale_video(
        src, tmp_path / "out.mkv", model="bicubic", chunk=3, overlap=1, tile=32, quiet=True
    )
    assert summary["chunks"] == 4 and len(alive_at_call) == 4
    assert alive_at_call == [0, 0, 0, 0]
