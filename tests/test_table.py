"""`afvsr table`: rows named and ordered as in the method's table, from synthetic results files."""

import csv
import json

import pytest

from afvsr.cli import main
from afvsr.evaluation.evaluate import FORMAT_VERSION
from afvsr.evaluation.table import describe


def fake_results(name, params, psnr, *, kwargs=None, window=None, mode=None, dataset="REDS4"):
    m = {"psnr_rgb": psnr, "ssim_rgb": 0.8, "psnr_y": psnr + 1.5, "ssim_y": 0.85}
    return {
        "format_version": FORMAT_VERSION,
        "model": {"name": name, "source": name, "kwargs": kwargs or {}, "params": params},
        "mode": mode,
        "window": window,
        "device": "cpu",
        "dataset": {"spec": dataset, "name": dataset, "split": None, "num_clips": 4},
        "clips": [],
        "mean": {**m, "ms_per_frame": 12.345},
    }


def method(params, psnr, *, rates, num_heads, mode, group_fusion="attention"):
    kwargs = {"mid_channels": 64, "num_blocks": 30, "scale": 4, "window": 5}
    kwargs.update(rates=rates, num_heads=num_heads, group_fusion=group_fusion)
    return fake_results("afvsr", params, psnr, kwargs=kwargs, mode=mode)


ROWS = [  # (file stem, results), deliberately not in table order
    (
        "afvsr_mean",
        method(6291311, 31.1, rates=[1, 2, 3], num_heads=1, mode=None, group_fusion="mean"),
    ),
    ("afvsr_rates", method(6844719, 31.2, rates=[1, 3, 5], num_heads=1, mode="sequence")),
    ("basicvsr_full", fake_results("basicvsr", 6291311, 31.4)),
    ("afvsr_multi", method(7767215, 31.6, rates=[1, 2, 3], num_heads=4, mode="sequence")),
    ("basicvsr11", fake_results("basicvsr", 6291311, 30.9, window=11)),
    ("bicubic", fake_results("bicubic", 0, 26.14)),
    ("iconvsr5", fake_results("iconvsr", 8700000, 30.5, window=5)),
    ("basicvsr5", fake_results("basicvsr", 6291311, 30.2, window=5)),
    ("afvsr_single", method(6844719, 31.5, rates=[1, 2, 3], num_heads=1, mode="window")),
    ("basicvsr7", fake_results("basicvsr", 6291311, 30.6, window=7)),
]

EXPECTED_METHODS = [
    "Bicubic",
    "BasicVSR (5 frames)",
    "BasicVSR (7 frames)",
    "BasicVSR (11 frames)",
    "BasicVSR (full sequence)",
    "IconVSR (5 frames)",
    "AFVSR single-head",
    "AFVSR multi-head (4 heads)",
    "AFVSR single-head, rates (1,3,5)",
    "AFVSR ablation: mean over groups, no attention",
]


def write_all(tmp_path, rows):
    paths = []
    for stem, results in rows:
        path = tmp_path / f"{stem}.json"
        path.write_text(json.dumps(results))
        paths.append(str(path))
    return paths


def test_table_rows_in_the_methods_order(tmp_path, capsys):
    out = tmp_path / "table.csv"
    assert main(["table", *write_all(tmp_path, ROWS), "--out", str(out)]) == 0
    stdout = capsys.readouterr().out.strip().splitlines()
    assert stdout[0].startswith("REDS4 (4 clips)") and "RGB" in stdout[0]
    table = [line for line in stdout if line.startswith("|")]
    assert table[0] == "| Method | Modality | Params (M) | PSNR | SSIM | ms/frame |"
    assert [line.split(" | ")[0][2:] for line in table[2:]] == EXPECTED_METHODS
    assert table[2] == "| Bicubic | single frame | 0.00 | 26.14 | 0.8000 | 12.3 |"
    assert (
        table[5]
        == "| BasicVSR (11 frames) | recurrent, 11-frame window | 6.29 | 30.90 | 0.8000 | 12.3 |"
    )
    assert "| 6.84 | 31.50 |" in table[8] and "window mode" in table[8]
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["Method"] for r in rows] == EXPECTED_METHODS
    assert rows[7]["Params (M)"] == "7.77" and rows[7]["PSNR"] == "31.60"
    assert rows[7]["Modality"] == "3 rate groups (1,2,3) x 5 frames, sequence mode"


def test_residual_fusion_is_named_and_sorted_after_the_plain_model():
    plain = method(6844719, 31.5, rates=[1, 2, 3], num_heads=1, mode="sequence")
    residual = method(6844719, 31.6, rates=[1, 2, 3], num_heads=1, mode="sequence")
    residual["model"]["kwargs"]["residual_fusion"] = True
    assert describe(plain)[0] == "AFVSR single-head"
    assert describe(residual)[0] == "AFVSR single-head, residual fusion"
    assert describe(plain)[2] < describe(residual)[2]


def test_y_channel_for_vimeo_by_default(tmp_path, capsys):
    rows = [(s, fake_results("bicubic", 0, 30.0, dataset="vimeo")) for s in ("a",)]
    assert main(["table", *write_all(tmp_path, rows), "--out", str(tmp_path / "t.csv")]) == 0
    assert "| 31.50 | 0.8500 |" in capsys.readouterr().out
    assert (
        main(
            [
                "table",
                *write_all(tmp_path, rows),
                "--out",
                str(tmp_path / "t.csv"),
                "--channel",
                "rgb",
            ]
        )
        == 0
    )
    assert "| 30.00 | 0.8000 |" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content, message",
    [
        (
            {**fake_results("bicubic", 0, 26.0), "format_version": 7},
            "unknown results format_version 7",
        ),
        ({"hello": 1}, "unknown results format_version None"),
    ],
)
def test_unknown_results_version_is_a_one_line_error(tmp_path, capsys, content, message):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(content))
    assert main(["table", str(path), "--out", str(tmp_path / "t.csv")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("afvsr: error:")
    assert not (tmp_path / "t.csv").exists()


def test_mixed_datasets_are_refused(tmp_path, capsys):
    rows = [
        ("a", fake_results("bicubic", 0, 26.0)),
        ("b", fake_results("bicubic", 0, 30.0, dataset="vimeo")),
    ]
    assert main(["table", *write_all(tmp_path, rows), "--out", str(tmp_path / "t.csv")]) == 2
    assert "different datasets (REDS4, vimeo)" in capsys.readouterr().err


def test_describe_unknown_model_keeps_its_name():
    assert describe(fake_results("spynet", 1440300, 0.0))[0] == "spynet"


def test_results_on_different_frames_are_refused_and_a_subset_is_named(tmp_path, capsys):
    whole, first10 = fake_results("bicubic", 0, 26.0), fake_results("basicvsr", 6291311, 30.0)
    first10["max_frames"] = 10
    files = write_all(tmp_path, [("a", whole), ("b", first10)])
    assert main(["table", *files, "--out", str(tmp_path / "t.csv")]) == 2
    assert "different frames (max_frames 10, None)" in capsys.readouterr().err
    whole["max_frames"] = 10
    files = write_all(tmp_path, [("a", whole), ("b", first10)])
    assert main(["table", *files, "--out", str(tmp_path / "t.csv")]) == 0
    assert "REDS4 (4 clips, the first 10 frames of each): mean PSNR" in capsys.readouterr().out


def test_a_precision_other_than_fp32_is_named_after_the_modality():
    fp32 = fake_results("basicvsr", 6291311, 31.4)
    bf16 = {**fake_results("basicvsr", 6291311, 31.39), "precision": "bf16"}
    assert describe(fp32)[1] == "recurrent, full sequence"  # older files have no precision
    assert describe({**fp32, "precision": "fp32"})[1] == "recurrent, full sequence"
    name, modality, key = describe(bf16)
    assert (name, modality) == ("BasicVSR (full sequence)", "recurrent, full sequence, bf16")
    assert key > describe(fp32)[2]  # right after its fp32 row


def test_results_written_before_the_rename_keep_their_labels():
    """Results files from before the method was named AFVSR say model "fusion" and argument
    "fusion" (results/ holds such files): same rows, same order."""
    for _, results in ROWS:
        model = results["model"]
        if model["name"] != "afvsr":
            continue
        old = json.loads(json.dumps(results))
        old["model"]["name"] = "fusion"
        old_kwargs = old["model"]["kwargs"]
        old_kwargs["fusion"] = old_kwargs.pop("group_fusion")
        assert describe(old) == describe(results)


def test_seeds_of_one_recipe_merge_into_mean_and_sd(tmp_path, capsys):
    single = dict(rates=[1, 2, 3], num_heads=1, mode="sequence")
    rows = [
        ("s0", method(6844719, 31.50, **single)),
        ("s1", method(6844719, 31.56, **single)),
        ("small", fake_results("basicvsr", 1731663, 30.0)),  # another size: its own row
        ("full", fake_results("basicvsr", 6291311, 31.0)),
    ]
    out = tmp_path / "t.csv"
    assert main(["table", *write_all(tmp_path, rows), "--out", str(out)]) == 0
    with open(out, newline="") as f:
        table = list(csv.DictReader(f))
    assert [(r["Method"], r["Params (M)"], r["PSNR"]) for r in table] == [
        ("BasicVSR (full sequence)", "1.73", "30.00"),
        ("BasicVSR (full sequence)", "6.29", "31.00"),
        ("AFVSR single-head (2 runs)", "6.84", "31.53 ± 0.04"),  # SD of 31.50, 31.56: 0.042
    ]
    assert table[2]["SSIM"] == "0.8000 ± 0.0000"
