"""`evaluate` end to end on tiny generated clips with stand-in models; results files; windows."""

import csv
import json
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from afvsr import save_model
from afvsr.cli import main
from afvsr.errors import AfvsrError
from afvsr.evaluation.evaluate import (
    FORMAT_VERSION,
    evaluate,
    load_results,
    upscale_clip,
    window_indices,
    write_results,
)
from afvsr.imresize import bi_degrade
from afvsr.models import BasicVSR, Bicubic


class ClipList(list):
    """A stand-in evaluation dataset: a list of ``{"lq", "gt", "key"}`` clips with a name."""

    name = "tiny"


def smooth_clip(t, h, w, seed=0):
    """``(t, 3, h, w)`` moving low-frequency sinusoids on uint8 levels."""
    ys = torch.arange(h, dtype=torch.float64).view(h, 1)
    xs = torch.arange(w, dtype=torch.float64).view(1, w)
    frames = []
    for i in range(t):
        channels = [
            0.5
            + 0.3
            * torch.sin(2 * math.pi * (xs + 2 * i + 5 * c + seed) / 24)
            * torch.cos(2 * math.pi * (ys - i + 3 * c) / 20)
            for c in range(3)
        ]
        frames.append(torch.stack(channels))
    return torch.round(torch.stack(frames).float() * 255) / 255


def blocky_clip(t, h, w, scale, seed=0):
    """GT made of scale x scale constant blocks (so nearest upsampling of its subsampling is exact)
    and its LR."""
    g = torch.Generator().manual_seed(seed)
    lq = torch.randint(0, 256, (t, 3, h, w), generator=g).float() / 255
    return lq, lq.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)


class Nearest(nn.Module):
    """Per-frame nearest upsampling: ``(b, t, 3, h, w) → (b, t, 3, s*h, s*w)``."""

    def __init__(self, scale=2):
        super().__init__()
        self.scale, self.kwargs = scale, {"scale": scale}
        self.offset = nn.Parameter(torch.zeros(()))  # one parameter, so it has a device
        self.calls = []

    def upsample(self, lq):
        b, t, c, h, w = lq.shape
        up = F.interpolate(lq.reshape(b * t, c, h, w), scale_factor=self.scale, mode="nearest")
        return up.view(b, t, c, h * self.scale, w * self.scale) + self.offset

    def forward(self, lq):
        self.calls.append(tuple(lq.shape))
        return self.upsample(lq)


class TemporalMean(Nearest):
    """Every output frame is the nearest-upsampled mean of all input frames (sees the window)."""

    def forward(self, lq):
        self.calls.append(tuple(lq.shape))
        return self.upsample(lq.mean(dim=1, keepdim=True)).expand(-1, lq.shape[1], -1, -1, -1)


class WithMode(Nearest):
    clip_modes = ("window", "sequence")  # declared, as the models do (afvsr.models)
    default_mode = "sequence"

    def forward(self, lq, *, mode="sequence"):
        self.modes = [*getattr(self, "modes", []), mode]
        return super().forward(lq)


def test_window_indices_mirror_at_the_ends():
    assert window_indices(0, 10, 5) == [2, 1, 0, 1, 2]
    assert window_indices(1, 10, 5) == [1, 0, 1, 2, 3]
    assert window_indices(5, 10, 5) == [3, 4, 5, 6, 7]
    assert window_indices(9, 10, 5) == [7, 8, 9, 8, 7]
    assert window_indices(0, 1, 5) == [0] * 5
    assert window_indices(0, 2, 7) == [1, 0, 1, 0, 1, 0, 1]


def test_identity_on_gt_gives_inf_and_one():
    clips = ClipList()
    for i in range(2):
        lq, gt = blocky_clip(3, 12, 14, 2, seed=i)
        clips.append({"key": f"clip{i}", "lq": lq, "gt": gt})
    results = evaluate(Nearest(2), clips)
    assert results["format_version"] == FORMAT_VERSION
    assert [c["key"] for c in results["clips"]] == ["clip0", "clip1"]
    assert math.isinf(results["mean"]["psnr_rgb"]) and math.isinf(results["mean"]["psnr_y"])
    assert results["mean"]["ssim_rgb"] == 1.0 and results["mean"]["ssim_y"] == 1.0
    assert results["dataset"] == {
        "spec": None,
        "name": "tiny",
        "split": None,
        "num_clips": 2,
        "num_frames": 6,
    }
    assert results["model"]["params"] == 1 and results["model"]["scale"] == 2
    assert results["model"]["name"] == "nearest"
    assert results["mean"]["ms_per_frame"] > 0
    assert results["peak_memory"]["rss_mb"] > 10
    assert results["peak_memory"]["cuda_max_allocated_mb"] is None


def test_bicubic_of_bi_gives_the_expected_psnr_range():
    gt = smooth_clip(3, 48, 64)
    clips = ClipList([{"key": "smooth", "lq": bi_degrade(gt, 4), "gt": gt}])
    results = evaluate(Bicubic(scale=4), clips)
    clip = results["clips"][0]
    assert results["model"]["name"] == "bicubic" and results["model"]["params"] == 0
    assert all(31.0 < v < 37.0 for v in clip["frames"]["psnr_rgb"])
    assert all(0.98 < v < 0.999 for v in clip["frames"]["ssim_rgb"])
    # Y weighs green most and averages out part of the per-channel error.
    assert clip["psnr_y"] > clip["psnr_rgb"]


def test_averages_per_clip_then_over_clips():
    lq_a, gt_a = blocky_clip(2, 12, 12, 2, seed=0)
    lq_b, gt_b = blocky_clip(4, 12, 12, 2, seed=1)
    gt_a = gt_a.clone()
    gt_a[:, :, 0, 0] = (gt_a[:, :, 0, 0] + 0.5) % 1  # clip a: small error in every frame
    gt_b = gt_b.clone()
    gt_b[0, :, :4, :4] = 1 - gt_b[0, :, :4, :4]  # clip b: a large error in its first frame only
    clips = ClipList([{"key": "a", "lq": lq_a, "gt": gt_a}, {"key": "b", "lq": lq_b, "gt": gt_b}])
    results = evaluate(Nearest(2), clips)
    a, b = results["clips"]
    for clip in (a, b):
        for name in ("psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y"):
            assert clip[name] == pytest.approx(np.mean(clip["frames"][name]))
            assert len(clip["frames"][name]) == clip["num_frames"]
    assert math.isinf(b["psnr_rgb"])  # three of its frames are exact
    finite_b = evaluate(Nearest(2), ClipList([{"key": "b0", "lq": lq_b[:1], "gt": gt_b[:1]}]))
    assert finite_b["mean"]["psnr_rgb"] < 25
    assert results["mean"]["ssim_rgb"] == pytest.approx((a["ssim_rgb"] + b["ssim_rgb"]) / 2)
    # not the mean over all six frames
    all_frames = a["frames"]["ssim_rgb"] + b["frames"]["ssim_rgb"]
    assert results["mean"]["ssim_rgb"] != pytest.approx(np.mean(all_frames))


def test_window_restricts_the_model_to_frames_around_each_reference():
    lq, gt = blocky_clip(6, 6, 6, 2)
    model = TemporalMean(2)
    out = upscale_clip(model, lq, window=3, window_batch=4)
    assert out.shape == (6, 3, 12, 12)
    assert model.calls == [(4, 3, 3, 6, 6), (2, 3, 3, 6, 6)]  # 6 windows of 3, batches of 4
    for t in (0, 3, 5):
        expected = lq[window_indices(t, 6, 3)].mean(dim=0)
        expected = expected.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
        torch.testing.assert_close(out[t], expected)
    # without a window the model sees the whole clip once
    model.calls.clear()
    whole = upscale_clip(model, lq)
    assert model.calls == [(1, 6, 3, 6, 6)]
    torch.testing.assert_close(
        whole[0], lq.mean(dim=0).repeat_interleave(2, -2).repeat_interleave(2, -1)
    )
    results = evaluate(TemporalMean(2), ClipList([{"key": "c", "lq": lq, "gt": gt}]), window=3)
    assert results["window"] == 3 and results["mode"] is None


def test_mode_is_passed_to_models_that_take_it():
    lq, gt = blocky_clip(3, 12, 12, 2)
    clips = ClipList([{"key": "c", "lq": lq, "gt": gt}])
    model = WithMode(2)
    assert evaluate(model, clips, mode="window")["mode"] == "window"
    assert evaluate(model, clips)["mode"] == "sequence"  # the model's own default, recorded
    assert model.modes == ["window", "sequence"]
    with pytest.raises(AfvsrError, match="AFVSR only"):
        evaluate(Nearest(2), clips, mode="window")
    with pytest.raises(AfvsrError, match="--window"):
        evaluate(model, clips, window=5)
    with pytest.raises(AfvsrError, match="odd"):
        evaluate(Nearest(2), clips, window=4)


def test_bf16_precision_scores_close_to_fp32_and_is_recorded():
    torch.manual_seed(0)
    model = BasicVSR(mid_channels=8, num_blocks=1, scale=4).eval()
    gt = smooth_clip(3, 48, 64)
    clips = ClipList([{"key": "smooth", "lq": bi_degrade(gt, 4), "gt": gt}])
    fp32 = evaluate(model, clips, precision="fp32")
    bf16 = evaluate(model, clips, precision="bf16")
    assert fp32["precision"] == "fp32" and bf16["precision"] == "bf16"
    # bf16 keeps 8 bits of mantissa: the outputs differ, but by far less than a dB.
    assert bf16["mean"]["psnr_rgb"] != fp32["mean"]["psnr_rgb"]
    assert bf16["mean"]["psnr_rgb"] == pytest.approx(fp32["mean"]["psnr_rgb"], abs=0.3)
    out = upscale_clip(model, clips[0]["lq"], precision="bf16")
    assert out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1
    with pytest.raises(ValueError, match="fp16 needs --device cuda"):
        evaluate(model, clips, precision="fp16")


def test_bad_data_is_a_one_line_error():
    lq, gt = blocky_clip(2, 12, 12, 2)
    with pytest.raises(AfvsrError, match="no clips"):
        evaluate(Nearest(2), ClipList())
    with pytest.raises(AfvsrError, match="no ground truth"):
        evaluate(Nearest(2), ClipList([{"key": "c", "lq": lq, "gt": None}]))
    with pytest.raises(AfvsrError, match="x4"):
        evaluate(Nearest(4), ClipList([{"key": "c", "lq": lq, "gt": gt}]))


def test_results_files_round_trip(tmp_path):
    lq, gt = blocky_clip(2, 12, 12, 2)
    gt_noisy = gt.clone()
    gt_noisy[0, 0, 0, 0] = 1 - gt_noisy[0, 0, 0, 0]
    clips = ClipList(
        [{"key": "exact", "lq": lq, "gt": gt}, {"key": "noisy", "lq": lq, "gt": gt_noisy}]
    )
    results = evaluate(Nearest(2), clips, max_frames=1)
    assert results["dataset"]["num_frames"] == 2 and results["max_frames"] == 1
    json_path, csv_path = write_results(results, tmp_path / "res.json")
    assert csv_path == tmp_path / "res.csv"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res.csv", "res.json"]  # no temp files
    loaded = load_results(json_path)
    assert loaded == json.loads(json.dumps(results))
    assert math.isinf(loaded["clips"][0]["psnr_rgb"])
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["clip"] for r in rows] == ["exact", "noisy", "mean"]
    assert rows[0]["psnr_rgb"] == "inf" and rows[2]["model"] == "nearest"
    assert float(rows[1]["psnr_rgb"]) == pytest.approx(results["clips"][1]["psnr_rgb"])
    assert rows[2]["num_frames"] == "2" and rows[2]["dataset"] == "tiny"


def test_unknown_results_version_is_an_error(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"format_version": 99, "mean": {}}))
    with pytest.raises(AfvsrError, match="format_version 99"):
        load_results(path)
    path.write_text("not json")
    with pytest.raises(AfvsrError, match="not a JSON"):
        load_results(path)


def test_save_frames_writes_the_rounded_output(tmp_path):
    lq, gt = blocky_clip(2, 12, 12, 2)
    evaluate(Nearest(2), ClipList([{"key": "seq/a", "lq": lq, "gt": gt}]), save_frames_dir=tmp_path)
    files = sorted((tmp_path / "seq" / "a").iterdir())
    assert [f.name for f in files] == ["00000000.png", "00000001.png"]
    saved = np.asarray(Image.open(files[1]))
    assert saved.shape == (24, 24, 3)
    np.testing.assert_array_equal(saved, (gt[1] * 255).round().byte().permute(1, 2, 0).numpy())


# ---- `afvsr eval` end to end on a folder of generated sequences -------------------------------

MEAN_LINE = re.compile(
    r"^mean psnr_rgb=\d+\.\d\d ssim_rgb=0\.\d{4} psnr_y=\d+\.\d\d ssim_y=0\.\d{4} "
    r"\(2 clips, 5 frames\)$"
)


def write_sequences(root, lengths=(2, 3), size=(48, 64)):
    """``root/seq<i>/<n>.png``: smooth moving patterns, one folder per sequence."""
    for i, t in enumerate(lengths):
        folder = root / f"seq{i}"
        folder.mkdir(parents=True)
        for n, frame in enumerate(smooth_clip(t, *size, seed=7 * i)):
            pixels = (frame * 255).round().byte().permute(1, 2, 0).numpy()
            Image.fromarray(pixels).save(folder / f"{n:03d}.png")
    return root


def test_eval_cli_bicubic_on_a_folder(tmp_path, capsys):
    data = write_sequences(tmp_path / "data")
    out = tmp_path / "res.json"
    code = main(["eval", "--model", "bicubic", "--data", str(data), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("seq0 psnr_rgb=") and "(2 frames," in lines[0]
    assert MEAN_LINE.match(lines[-1]), lines[-1]
    assert "afvsr eval: [1/2] seq0" in captured.err  # progress goes to stderr
    results = load_results(out)
    assert results["dataset"]["spec"] == str(data) and results["dataset"]["name"] == "data"
    assert results["model"] == {
        "name": "bicubic",
        "source": "bicubic",
        "kwargs": {"scale": 4},
        "params": 0,
        "scale": 4,
    }
    mean = results["mean"]
    assert 31.0 < mean["psnr_rgb"] < 37.0
    assert lines[-1].startswith(
        f"mean psnr_rgb={mean['psnr_rgb']:.2f} ssim_rgb={mean['ssim_rgb']:.4f}"
    )
    assert out.with_suffix(".csv").is_file()


def test_eval_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["eval", "--model", "bicubic", "--data", str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("afvsr: error:") and err.count("\n") == 1

    ckpt = tmp_path / "bicubic2.safetensors"
    save_model(BasicVSR(mid_channels=4, num_blocks=1, scale=2), ckpt)
    data = write_sequences(tmp_path / "data")
    assert main(["eval", "--model", str(ckpt), "--data", str(data), "--scale", "4"]) == 2
    assert "upscales x2 but --scale is 4" in capsys.readouterr().err
    assert main(["eval", "--model", "bicubic", "--data", str(data), "--mode", "window"]) == 2
    assert "AFVSR only" in capsys.readouterr().err
    assert main(["eval", "--model", str(ckpt), "--data", str(data), "--precision", "fp16"]) == 2
    err = capsys.readouterr().err
    assert "fp16 needs --device cuda" in err and err.count("\n") == 1
