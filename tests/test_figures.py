"""`afvsr figures`: PNGs of the expected pixel size with real content, from tiny inputs."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from afvsr import save_model
from afvsr.cli import main
from afvsr.errors import AfvsrError
from afvsr.evaluation.figures import (
    attention_figure,
    compare_figure,
    curves_figure,
    parse_crop,
    pick_channels,
    read_log,
    save_png,
)
from afvsr.evaluation.metrics import psnr
from afvsr.models import AFVSR, BasicVSR


def png(path):
    """(width, height) and the pixels of a PNG, checked to be a real picture (not one colour)."""
    with Image.open(path) as im:
        pixels = np.asarray(im.convert("RGB"))
        size = im.size
    assert pixels.std() > 5, "the figure is blank"
    return size, pixels


def test_attention_figure_of_a_tiny_multihead_model(tmp_path):
    torch.manual_seed(0)
    model = AFVSR(mid_channels=4, num_blocks=1, num_heads=2, rates=(1, 2, 3)).eval()
    lq = torch.rand(7, 3, 16, 16)
    idx = torch.tensor(model.group_indices(3, 7))  # (G, W)
    with torch.inference_mode():
        _, maps = model.forward_groups(lq[idx][None], return_attention=True)
    maps = {k: v[0] for k, v in maps.items()}  # (heads, G, c, h, w)
    assert maps["attention"].shape == (2, 3, 4, 16, 16)
    # per head, the weights of the groups sum to 1 (softmax over the group axis)
    torch.testing.assert_close(maps["attention"].sum(dim=1), torch.ones(2, 4, 16, 16))
    fig = attention_figure(maps, rates=model.rates, channels=[3])
    assert len(fig.axes) == (2 * 3) * 3  # (heads x groups) rows, 3 panels per channel
    mean = maps["attention"][0, 0, 3].mean().item()
    assert [ax.get_title() for ax in fig.axes[:3]] == [
        "projection c3",
        f"attention c3: mean {mean:.2f}",
        "output c3",
    ]
    mean_h2_g2 = maps["attention"][1, 1, 3].mean().item()  # head 2, rate 2: its own mean
    assert fig.axes[3 * 4 + 1].get_title() == f"attention c3: mean {mean_h2_g2:.2f}"
    assert fig.axes[3 * 4].get_ylabel() == "head 2\nrate 2"
    # the attention panel shows the softmax weights on a fixed 0..1 scale
    image = fig.axes[3 * 4 + 1].get_images()[0]
    assert image.get_clim() == (0.0, 1.0)
    np.testing.assert_allclose(image.get_array(), maps["attention"][1, 1, 3].numpy(), rtol=1e-6)
    path = save_png(fig, tmp_path / "attention.png", dpi=50)
    size, _ = png(path)
    assert size == (int(3 * 1.6 * 50), int((6 * (1.6 + 0.3) + 0.3) * 50))  # square frames
    assert [p.name for p in tmp_path.iterdir()] == ["attention.png"]


def test_pick_channels_prefers_the_most_varied_attention():
    attn = torch.full((2, 3, 5, 4, 4), 1 / 3)
    attn[0, :, 2, 0, 0] = torch.tensor([0.9, 0.05, 0.05])
    attn[1, :, 4, 1:3, 1:3] = 0.0
    assert pick_channels(attn, None) == [[2], [4]]
    assert pick_channels(attn, [1, 0]) == [[1, 0], [1, 0]]
    with pytest.raises(AfvsrError, match="0..4"):
        pick_channels(attn, [5])


def test_compare_figure_labels_each_crop_with_its_psnr(tmp_path):
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(3, 40, 60, generator=g)
    noisy = (gt + 0.05 * torch.randn(3, 40, 60, generator=g)).clamp(0, 1)
    panels = [("Bicubic", torch.full_like(gt, 0.5)), ("AFVSR", noisy)]
    crop = parse_crop("10,5,30,20", 40, 60)
    assert crop == (10, 5, 30, 20)
    fig = compare_figure(panels, gt, crop, cell=2.0)
    titles = [ax.get_title() for ax in fig.axes]
    expected = float(psnr(noisy[:, 5:25, 10:40], gt[:, 5:25, 10:40]))
    assert 20 < expected < 30
    assert titles == [
        f"Bicubic\n{float(psnr(panels[0][1][:, 5:25, 10:40], gt[:, 5:25, 10:40])):.2f} dB",
        f"AFVSR\n{expected:.2f} dB",
        "GT",
    ]
    size, _ = png(save_png(fig, tmp_path / "compare.png", dpi=80))
    assert size == (480, int((2.0 * 20 / 30 + 0.5) * 80))  # matplotlib truncates


def test_parse_crop_default_and_errors():
    assert parse_crop(None, 40, 60) == (20, 10, 20, 20)
    with pytest.raises(AfvsrError, match="does not fit"):
        parse_crop("50,0,20,20", 40, 60)
    with pytest.raises(AfvsrError, match="four integers"):
        parse_crop("1,2,3", 40, 60)


def write_log(path, with_val=True):
    lines = [{"step": s, "loss": 0.1 * math.exp(-s / 50), "lr": 1e-4} for s in range(0, 200, 10)]
    if with_val:
        lines += [
            {"step": s, "val/psnr_rgb": 25 + s / 100, "val/psnr_y": 26 + s / 100}
            for s in (100, 200)
        ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")


def test_curves_from_a_jsonl_log(tmp_path, capsys):
    run = tmp_path / "run1"
    run.mkdir()
    write_log(run / "log.jsonl")
    records = read_log(run)  # a run folder with one log works too
    assert len(records) == 22 and records[-1]["val/psnr_y"] == 28.0
    fig = curves_figure({"run1": records})
    ax_loss, ax_val = fig.axes
    assert ax_loss.get_yscale() == "log"
    assert [line.get_label() for line in ax_val.get_lines()] == ["psnr_rgb", "psnr_y"]
    np.testing.assert_allclose(ax_val.get_lines()[0].get_ydata(), [26.0, 27.0])
    out = tmp_path / "curves.png"
    assert (
        main(["figures", "curves", str(run / "log.jsonl"), "--out", str(out), "--dpi", "50"]) == 0
    )
    assert png(out)[0] == (500, 200)
    assert "wrote" in capsys.readouterr().err


def test_curves_bad_log_is_a_one_line_error(tmp_path, capsys):
    log = tmp_path / "log.jsonl"
    log.write_text('{"step": 1, "loss": 0.5}\n{"step": 2, "loss": \n')
    out = tmp_path / "curves.png"
    assert main(["figures", "curves", str(log), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("afvsr: error:") and "log.jsonl:2: not a JSON line" in err
    assert not out.exists()
    log.write_text('{"step": 1, "lr": 0.5}\n')
    assert main(["figures", "curves", str(log), "--out", str(out)]) == 2
    assert "no training loss" in capsys.readouterr().err


def write_clip(root, t=3, size=(48, 64)):
    """``root/clip/<n>.png``: one sequence of random smooth frames (GT only)."""
    folder = root / "clip"
    folder.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    base = torch.nn.functional.interpolate(
        torch.rand(t, 3, 6, 8, generator=g), size=size, mode="bilinear"
    )
    for n, frame in enumerate(base):
        Image.fromarray((frame * 255).round().byte().permute(1, 2, 0).numpy()).save(
            folder / f"{n}.png"
        )
    return root


def test_attention_and_compare_commands(tmp_path, capsys):
    data = write_clip(tmp_path / "data", t=2)
    method = tmp_path / "afvsr.safetensors"
    save_model(AFVSR(mid_channels=4, num_blocks=1, num_heads=2), method)
    basic = tmp_path / "basic.safetensors"
    save_model(BasicVSR(mid_channels=4, num_blocks=1), basic)

    out = tmp_path / "attention.png"
    args = ["figures", "attention", "--model", str(method), "--data", str(data), "--frame", "0"]
    assert main([*args, "--channels", "1", "--out", str(out), "--dpi", "40"]) == 0, (
        capsys.readouterr().err
    )
    # LR frames 16 x 12: panels 1.6 x 1.2 inches
    assert png(out)[0] == (int(3 * 1.6 * 40), int((6 * (1.2 + 0.3) + 0.3) * 40))

    out = tmp_path / "compare.png"
    models = ["bicubic", str(basic)]
    args = ["figures", "compare", "--models", *models, "--data", str(data), "--crop", "8,8,32,32"]
    assert main([*args, "--out", str(out), "--dpi", "50"]) == 0, capsys.readouterr().err
    assert png(out)[0] == (3 * 2 * 50, int(2.5 * 50))

    assert main(["figures", "attention", "--model", str(basic), "--data", str(data)]) == 2
    assert "not an AFVSR model" in capsys.readouterr().err
    assert main([*args, "--clip", "nope", "--out", str(out)]) == 2
    assert "no clip 'nope'" in capsys.readouterr().err
