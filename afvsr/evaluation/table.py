"""Print (markdown) and write (CSV) the comparison table from `afvsr eval` results files.

Columns: Method | Modality | Params (M) | PSNR | SSIM | ms/frame, one row per results file, in the
order of the method's table: Bicubic; BasicVSR with a 5-, 7- and 11-frame window and on the full
sequence; IconVSR with a 5-frame window; the method single-head, multi-head and with rates
(1, 3, 5), then the ablation (mean over groups). Row names come from each file's model name, kwargs,
--window and --mode. Files with the same row name and parameter count (runs of one recipe with
different seeds) share one row, "(N runs)", with their mean and sample standard deviation
("31.53 ± 0.04").
PSNR/SSIM are the means over clips, on RGB or on Y (--channel; default: Y for Vimeo-90K and
Vid4, RGB otherwise). All files must come from the same dataset.

examples:
  afvsr table results/*.json
  afvsr table bicubic.json basicvsr5.json afvsr.json --out table.csv --channel y
"""

from __future__ import annotations

import csv
import os
import statistics
from pathlib import Path
from typing import Any

from afvsr.names import current_kwargs, current_name

COLUMNS = ("Method", "Modality", "Params (M)", "PSNR", "SSIM", "ms/frame")
DEFAULT_RATES = (1, 2, 3)
METHOD = "AFVSR"  # the method this package implements (attention-based fusion VSR)


def _rates(kwargs: dict) -> tuple[int, ...]:
    return tuple(kwargs.get("rates", DEFAULT_RATES))


def describe(results: dict[str, Any]) -> tuple[str, str, tuple]:
    """``(row name, modality, sort key)`` of one results dict; a precision other than fp32
    (``afvsr eval --precision``) is named after the modality."""
    name, modality, key = _describe_model(results)
    precision = results.get("precision") or "fp32"
    if precision == "fp32":
        return name, modality, key
    return name, f"{modality}, {precision}", (*key, precision)


def _describe_model(results: dict[str, Any]) -> tuple[str, str, tuple]:
    model = results["model"]
    name = current_name(model["name"])  # results files written before the rename say "fusion"
    kwargs = current_kwargs(name, model.get("kwargs") or {})
    window, mode = results.get("window"), results.get("mode")
    if name == "bicubic":
        return "Bicubic", "single frame", (0,)
    if name in ("basicvsr", "iconvsr"):
        label = {"basicvsr": "BasicVSR", "iconvsr": "IconVSR"}[name]
        rank = 1 if name == "basicvsr" else 2
        if window is None:
            return f"{label} (full sequence)", "recurrent, full sequence", (rank, float("inf"))
        return f"{label} ({window} frames)", f"recurrent, {window}-frame window", (rank, window)
    if name == "afvsr":
        heads = int(kwargs.get("num_heads", 1))
        rates = _rates(kwargs)
        label = f"{METHOD} single-head" if heads == 1 else f"{METHOD} multi-head ({heads} heads)"
        ablation = kwargs.get("group_fusion", "attention") == "mean"
        residual = bool(kwargs.get("residual_fusion", False))
        if ablation:
            label = f"{METHOD} ablation: mean over groups, no attention"
        if rates != DEFAULT_RATES:
            label += f", rates ({','.join(map(str, rates))})"
        if residual:
            label += ", residual fusion"
        modality = (
            f"{len(rates)} rate groups ({','.join(map(str, rates))}) x "
            f"{kwargs.get('window', 5)} frames, {mode or 'sequence'} mode"
        )
        key = (3, ablation, rates != DEFAULT_RATES, heads, rates, residual, mode or "")
        return label, modality, key
    return name, "", (9, name)


# (dotted field, accepted types, what it should be): what the table reads from a results file.
_NUMBER = (int, float)
RESULTS_FIELDS: tuple[tuple[str, tuple[type, ...], str], ...] = (
    ("model", (dict,), "an object"),
    ("model.name", (str,), "a string"),
    ("model.params", _NUMBER, "a number"),
    ("model.kwargs", (dict, type(None)), "an object"),
    ("dataset", (dict,), "an object"),
    ("dataset.name", (str, type(None)), "a string"),
    ("dataset.num_clips", (int,), "an integer"),
    ("mean", (dict,), "an object"),
    *((f"mean.{k}", _NUMBER, "a number") for k in ("psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y")),
    ("mean.ms_per_frame", _NUMBER, "a number"),
    ("window", (int, type(None)), "an integer or null"),
    ("mode", (str, type(None)), "a string or null"),
    ("precision", (str, type(None)), "a string or null"),
    ("max_frames", (int, type(None)), "an integer or null"),
)
_OPTIONAL = {"model.kwargs", "window", "mode", "precision", "max_frames"}


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    """A results file of `afvsr eval`, checked field by field: a one-line AfvsrError naming the
    file and the first missing or wrongly typed field the table needs."""
    from afvsr.errors import AfvsrError
    from afvsr.evaluation.evaluate import load_results

    path = Path(path)
    if path.is_dir():
        raise AfvsrError(f"{path} is a folder; expected a results JSON file from `afvsr eval`")
    results = load_results(path)
    for field, types, what in RESULTS_FIELDS:
        value: Any = results
        for key in field.split("."):
            value = value.get(key, KeyError) if isinstance(value, dict) else KeyError
        if value is KeyError:
            if field in _OPTIONAL:
                continue
            raise AfvsrError(f"{path}: the results have no {field!r}; re-run `afvsr eval`")
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise AfvsrError(f"{path}: {field!r} should be {what}, got {value!r:.40}")
    return results


def pick_channel(channel: str, dataset_name: str | None) -> str:
    if channel != "auto":
        return channel
    lowered = (dataset_name or "").lower()
    return "y" if ("vimeo" in lowered or "vid4" in lowered) else "rgb"


def build_rows(all_results: list[dict[str, Any]], channel: str) -> list[dict[str, str]]:
    """One formatted row per method, sorted as in the method's table; results that name the
    same row (seeds of one recipe) are merged into their mean ± sample standard deviation."""
    groups: dict[tuple, tuple[str, str, list[dict[str, Any]]]] = {}
    for results in all_results:
        method, modality, key = describe(results)
        key = (*key, results["model"]["params"])  # models of another size stay apart
        groups.setdefault(key, (method, modality, []))[2].append(results)
    rows = []
    for key in sorted(groups):
        (method, modality, runs), params = groups[key], key[-1]
        means = [r["mean"] for r in runs]
        rows.append(
            {
                "Method": method if len(runs) == 1 else f"{method} ({len(runs)} runs)",
                "Modality": modality,
                "Params (M)": f"{params / 1e6:.2f}",
                "PSNR": _mean_sd([m[f"psnr_{channel}"] for m in means], 2),
                "SSIM": _mean_sd([m[f"ssim_{channel}"] for m in means], 4),
                "ms/frame": f"{statistics.mean(m['ms_per_frame'] for m in means):.1f}",
            }
        )
    return rows


def _mean_sd(values: list[float], digits: int) -> str:
    """``"36.15"`` for one value, ``"36.15 ± 0.02"`` (mean ± sample SD) for several."""
    mean = f"{statistics.mean(values):.{digits}f}"
    return mean if len(values) == 1 else f"{mean} ± {statistics.stdev(values):.{digits}f}"


def markdown(rows: list[dict[str, str]]) -> str:
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|---|---|" + "---:|" * (len(COLUMNS) - 2),
    ]
    lines += ["| " + " | ".join(row[c] for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def is_table_csv(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a regular file that :func:`write_csv` wrote: its first line is the
    table's header. An earlier table is replaced without ``--force``; anything else is not."""
    path = Path(path)
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        first = f.readline(4096)
    return first.rstrip(b"\r\n") == ",".join(COLUMNS).encode()


def write_csv(rows: list[dict[str, str]], path: str | os.PathLike) -> Path:
    """Write the table's rows (from :func:`build_rows`) as CSV with a header, atomically."""
    from afvsr.io_utils import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path
