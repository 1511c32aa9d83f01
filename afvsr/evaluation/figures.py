"""Figures as PNG: attention maps of the method, side-by-side crops, training curves.

  attention  for one frame of one clip, per head and per frame-rate group: the head's projection,
             its attention map (softmax weights, 0–1) and its attention output, for chosen
             feature channels (default: per head, the channel whose attention varies most)
  compare    the same crop from each model's output and from the ground truth, side by side,
             each labelled with the PSNR (RGB, uint8-rounded) of that crop
  curves     training loss and validation PSNR against step, from one or more runs' JSONL logs

examples:
  afvsr figures attention --model afvsr-multihead-small --data shared:val --clip basketballpass
  afvsr figures compare --data REDS4 --root ~/data/REDS --clip 000 --frame 50 --crop 400,200,160,160
  afvsr figures curves runs/afvsr_single_cpu/metrics.jsonl --out curves.png

Figures are drawn with matplotlib's Agg canvas (no display needed); the PNG's size in pixels is
the figure size in inches times --dpi, and the file is written atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from afvsr.errors import AfvsrError
from afvsr.io_utils import read_utf8

PRETTY = {"bicubic": "Bicubic", "basicvsr": "BasicVSR", "iconvsr": "IconVSR", "afvsr": "AFVSR"}
COMPARE_DEFAULTS = ("bicubic", "basicvsr-small", "afvsr-single-small")
TITLE_IN = 0.3  # inches above a row of panels for their titles
PNG_SOFTWARE = "afvsr figures"  # the PNG text chunk that marks a figure as afvsr's own


def new_figure(width_in: float, height_in: float):
    """A matplotlib Figure on an Agg canvas (no pyplot global state, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in))
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, path: str | os.PathLike, *, dpi: int = 100) -> Path:
    """Write ``fig`` as a PNG of exactly (figure inches × dpi) pixels, atomically, tagged as
    afvsr's own (``Software``: :data:`PNG_SOFTWARE`)."""
    from afvsr.io_utils import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": PNG_SOFTWARE})
    return path


def is_afvsr_png(path: Path) -> bool:
    """Whether ``path`` is a PNG that :func:`save_png` wrote (its ``Software`` text chunk). An
    earlier figure is replaced without ``--force``; any other file is not."""
    from afvsr.outputs import is_tagged_png

    return is_tagged_png(path, PNG_SOFTWARE)


def _image(t) -> Any:
    """``(3, h, w)`` float in [0, 1] → ``(h, w, 3)`` numpy, rounded to uint8 levels for display."""
    import torch

    return (
        torch.round(t.detach().float().clamp(0, 1) * 255)
        .to(torch.uint8)
        .permute(1, 2, 0)
        .cpu()
        .numpy()
    )


def pick_channels(attention, channels: list[int] | None) -> list[list[int]]:
    """Channels to show for each head: ``channels`` for all heads, or per head the channel whose
    attention map varies most over groups and pixels.

    Args:
        attention: ``(heads, G, c, h, w)``.
    """
    heads, _, c = attention.shape[:3]
    if channels is None:
        spread = attention.transpose(1, 2).reshape(heads, c, -1).std(dim=-1)  # (heads, c)
        return [[int(spread[h].argmax())] for h in range(heads)]
    bad = [ch for ch in channels if not 0 <= ch < c]
    if bad:
        raise AfvsrError(f"--channels: expected channels in 0..{c - 1}, got {bad}")
    return [list(channels) for _ in range(heads)]


def attention_figure(maps: dict, *, rates, channels: list[int] | None = None, cell: float = 1.6):
    """Grid of the attention maps of one reference frame.

    Args:
        maps: ``{"projection", "attention", "output"}`` each ``(heads, G, c, h, w)`` (batch
            element 0 of ``AFVSR.forward_groups(..., return_attention=True)``).
        rates: the model's rates, one per group (row labels).
        channels: feature channels to show (all heads), or None to pick one per head.
        cell: inches per panel.

    Returns:
        A Figure of ``(3 · len(channels)) × (heads · G)`` panels: rows are (head, group), columns
        projection / attention / output per channel. Each panel is ``cell`` inches wide and
        ``cell · h / w`` high, plus ``TITLE_IN`` per row for titles and ``TITLE_IN`` at the top:
        ``3 · len(channels) · cell`` by ``heads · G · (cell · h / w + TITLE_IN) + TITLE_IN`` inches.
    """
    for key in ("projection", "attention", "output"):
        if key not in maps:
            raise ValueError(f"expected attention maps with key {key!r}, got keys {sorted(maps)}")
    proj, attn, outp = (
        maps[k].detach().float().cpu() for k in ("projection", "attention", "output")
    )
    if attn.ndim != 5:
        raise ValueError(f"expected maps of shape (heads, G, c, h, w), got {tuple(attn.shape)}")
    heads, groups = attn.shape[:2]
    chosen = pick_channels(attn, channels)
    n_ch = len(chosen[0])
    rows, cols = heads * groups, 3 * n_ch
    h_px, w_px = attn.shape[-2:]
    row_in = cell * h_px / w_px + TITLE_IN
    height = rows * row_in + TITLE_IN
    fig = new_figure(cols * cell, height)
    axes = fig.subplots(rows, cols, squeeze=False)
    fig.subplots_adjust(
        left=0.3 / (cols * cell),
        right=1 - 0.02 / (cols * cell),
        bottom=0.02 / height,
        top=1 - (2 * TITLE_IN - 0.02) / height,  # room for the suptitle and the first titles
        wspace=0.05,
        hspace=TITLE_IN / (cell * h_px / w_px),
    )
    for h in range(heads):
        for g in range(groups):
            row = h * groups + g
            for j, ch in enumerate(chosen[h]):
                panels = (
                    ("projection", proj[h, g, ch], None),
                    ("attention", attn[h, g, ch], (0.0, 1.0)),  # softmax weights: fixed scale
                    ("output", outp[h, g, ch], None),
                )
                for k, (title, img, limits) in enumerate(panels):
                    ax = axes[row][3 * j + k]
                    vmin, vmax = limits or (float(img.min()), float(img.max()))
                    ax.imshow(img.numpy(), cmap="viridis", vmin=vmin, vmax=vmax)
                    ax.set_xticks([])
                    ax.set_yticks([])
                    if title == "attention":  # every row: the group's mean weight
                        ax.set_title(f"{title} c{ch}: mean {img.mean():.2f}", fontsize=7)
                    elif row == 0 or (channels is None and g == 0):
                        ax.set_title(f"{title} c{ch}", fontsize=7)
            axes[row][0].set_ylabel(f"head {h + 1}\nrate {rates[g]}", fontsize=7)
    return fig


def parse_crop(text: str | None, height: int, width: int) -> tuple[int, int, int, int]:
    """``"X,Y,W,H"`` in HR pixels (None: a centred square of half the shorter side), checked."""
    if text is None:
        side = max(1, min(height, width) // 2)
        return (width - side) // 2, (height - side) // 2, side, side
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise AfvsrError(f"--crop: expected X,Y,W,H (four integers), got {text!r}") from None
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise AfvsrError(f"--crop {text} does not fit in the {width}x{height} frame")
    return x, y, w, h


def compare_figure(panels: list[tuple[str, Any]], gt, crop: tuple[int, int, int, int], *, cell=2.0):
    """Side-by-side crops, each titled with its label and the crop's PSNR against ``gt``.

    Args:
        panels: ``[(label, frame (3, H, W) in [0, 1]), …]``, e.g. bicubic, BasicVSR, the method.
        gt: ``(3, H, W)`` the ground-truth frame (drawn last, labelled "GT").
        crop: ``(x, y, w, h)`` in pixels of ``gt``.

    Returns:
        A Figure ``(len(panels) + 1) · cell`` inches wide and ``cell · h / w + 0.5`` high.
    """
    from afvsr.evaluation.metrics import psnr

    x, y, w, h = crop
    fig = new_figure((len(panels) + 1) * cell, cell * h / w + 0.5)
    axes = fig.subplots(1, len(panels) + 1, squeeze=False)[0]
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.45 / (cell * h / w + 0.5))
    gt_crop = gt[:, y : y + h, x : x + w]
    for i, (ax, (label, frame)) in enumerate(zip(axes, [*panels, ("GT", gt)], strict=True)):
        if tuple(frame.shape) != tuple(gt.shape):
            raise ValueError(
                f"{label}: expected a frame {tuple(gt.shape)}, got {tuple(frame.shape)}"
            )
        region = frame[:, y : y + h, x : x + w]
        ax.imshow(_image(region), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        title = "GT" if i == len(panels) else f"{label}\n{float(psnr(region, gt_crop)):.2f} dB"
        ax.set_title(title, fontsize=8)
    return fig


def read_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Records of a JSONL training log (a run folder holding one ``*.jsonl`` works too)."""
    path = Path(path)
    if path.is_dir():
        logs = sorted(path.glob("*.jsonl"))
        if len(logs) != 1:
            raise AfvsrError(
                f"{path}: expected one *.jsonl log in the run folder, found {len(logs)}"
            )
        path = logs[0]
    text = read_utf8(path, expected="a JSONL training log")
    records = []
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AfvsrError(f"{path}:{n}: not a JSON line ({exc.msg})") from None
        if isinstance(record, dict) and "step" in record:
            records.append(record)
    return records


def curves_figure(logs: dict[str, list[dict[str, Any]]], *, width: float = 10, height: float = 4):
    """Training loss (left, log scale when positive) and validation PSNR (right) against step.

    Args:
        logs: ``{run label: records}``; records with ``"loss"`` are training steps, keys starting
            with ``"val/psnr"`` (``val/psnr_rgb``, ``val/psnr_y``) are validation points.
    """
    fig = new_figure(width, height)
    ax_loss, ax_val = fig.subplots(1, 2, squeeze=True)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.14, top=0.9, wspace=0.25)
    any_loss = any_val = False
    for label, records in logs.items():
        prefix = f"{label} " if len(logs) > 1 else ""
        loss = [(r["step"], r["loss"]) for r in records if isinstance(r.get("loss"), int | float)]
        if loss:
            any_loss = True
            ax_loss.plot(*zip(*loss, strict=True), linewidth=0.8, label=f"{prefix}loss".strip())
        keys = sorted({k for r in records for k in r if k.startswith("val/psnr")})
        for key in keys:
            points = [(r["step"], r[key]) for r in records if isinstance(r.get(key), int | float)]
            any_val = True
            ax_val.plot(
                *zip(*points, strict=True), marker="o", markersize=3, label=prefix + key[4:]
            )
    if not any_loss and not any_val:
        raise AfvsrError("the log has no training loss and no validation PSNR records")
    ax_loss.set_title("training loss")
    ax_loss.set_xlabel("step")
    if any_loss:
        losses = [r["loss"] for recs in logs.values() for r in recs if "loss" in r]
        if min(losses) > 0:
            ax_loss.set_yscale("log")
        ax_loss.legend(fontsize=8)
    ax_val.set_title("validation PSNR (dB)")
    ax_val.set_xlabel("step")
    if any_val:
        ax_val.legend(fontsize=8)
    else:
        ax_val.text(0.5, 0.5, "no validation records", ha="center", transform=ax_val.transAxes)
    return fig
