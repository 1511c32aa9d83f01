"""``build_train_dataset`` / ``check_train_data_config`` (the [data] config section) and
``open_eval_dataset`` on generated folders."""

from __future__ import annotations

import pytest
import torch
from _data_trees import as_tensor, random_frames, write_clip

from afvsr.data import (
    TRAIN_DATA_DEFAULTS,
    RateGroupSamples,
    SequenceSamples,
    build_train_dataset,
    check_train_data_config,
    open_eval_dataset,
)
from afvsr.imresize import bi_degrade


def test_defaults_and_types_are_listed():
    cfg = check_train_data_config({})
    assert cfg == {key: spec.default for key, spec in TRAIN_DATA_DEFAULTS.items()}
    assert cfg["dataset"] == "shared" and cfg["scale"] == 4 and cfg["rates"] == [1, 2, 3]
    for key, spec in TRAIN_DATA_DEFAULTS.items():
        assert isinstance(spec.default, spec.types), key
        assert spec.help, key
    assert check_train_data_config({"rates": (1, 3, 5)})["rates"] == [1, 3, 5]


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"num_frame": 7}, "[data] unknown key 'num_frame'"),
        ({"num_frames": "7"}, "[data] num_frames: expected an integer, got '7'"),
        ({"num_frames": True}, "[data] num_frames: expected an integer, got True"),
        ({"augment": 1}, "[data] augment: expected a boolean, got 1"),
        ({"dataset": "div2k"}, "[data] dataset: expected one of"),
        ({"scale": 8}, "[data] scale: expected one of"),
        ({"window": 4}, "[data] rates / window: expected an odd window"),
        ({"rates": [0, 1]}, "positive integer rates"),
        ({"patch_size": 0}, "[data] patch_size: expected a value >= 1"),
        ({"gt_downscale": 3}, "[data] gt_downscale: expected one of"),
        ({"dataset": "reds"}, "[data] root: expected the dataset folder"),
        (
            {"dataset": "folder", "root": "x", "lq": "disk"},
            "[data] lq_root: expected the LR folder",
        ),
        ({"lq": "disk"}, "[data] lq: expected 'bi' for dataset 'shared'"),
        (
            {"root": "x", "dataset": "folder", "lq_root": "y"},
            "[data] lq_root: expected lq = 'disk'",
        ),
        ({"root": 5}, "[data] root: expected a string, got 5"),
        ({"interval_list": [1, 0]}, "[data] interval_list[1]: expected a value >= 1, got 0"),
        ({"interval_list": []}, "[data] interval_list: expected 1 to 16 items"),
        ({"interval_list": 2}, "[data] interval_list: expected a list"),
        (
            {"samples": "groups", "interval_list": [1, 2]},
            "[data] interval_list: expected [1] for groups samples",
        ),
    ],
)
def test_bad_config_names_the_key(cfg, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        check_train_data_config(cfg)


def test_folder_training_samples(tmp_path):
    frames = random_frames(8, 32, 40)
    write_clip(tmp_path / "gt" / "s", frames)
    cfg = {"dataset": "folder", "root": str(tmp_path / "gt"), "num_frames": 3, "patch_size": 4}
    seq = build_train_dataset(cfg)
    assert isinstance(seq, SequenceSamples) and len(seq) == 8
    assert build_train_dataset({**cfg, "interval_list": [1, 3]}).intervals == (1, 3)
    sample = seq[0]
    assert sample["lq"].shape == (3, 3, 4, 4) and sample["gt"].shape == (3, 3, 16, 16)
    groups = build_train_dataset({**cfg, "samples": "groups", "rates": [1, 2], "window": 3})
    assert isinstance(groups, RateGroupSamples)
    assert groups[7]["lq"].shape == (2, 3, 3, 4, 4) and groups[7]["gt"].shape == (3, 16, 16)
    # LR from disk
    write_clip(tmp_path / "lq" / "s", random_frames(8, 8, 10, seed=4))
    disk = build_train_dataset({**cfg, "lq": "disk", "lq_root": str(tmp_path / "lq")})
    assert disk.clips.clips[0].lq_paths is not None
    assert torch.equal(disk[3]["gt"], seq[3]["gt"])  # same seed, same crops
    assert not torch.equal(disk[3]["lq"], seq[3]["lq"])


def test_open_eval_dataset_on_a_folder(tmp_path):
    frames = random_frames(2, 12, 16)
    write_clip(tmp_path / "clips" / "one", frames)
    ds = open_eval_dataset(str(tmp_path / "clips"), scale=2)
    assert len(ds) == 1 and ds.name == "clips"
    torch.testing.assert_close(ds[0]["lq"], bi_degrade(as_tensor(frames), 2), rtol=0, atol=0)
    with pytest.raises(ValueError, match="expected a dataset name .*REDS4.*got 'nothing'"):
        open_eval_dataset("nothing")
    with pytest.raises(ValueError, match="expected scale in"):
        open_eval_dataset(str(tmp_path / "clips"), scale=5)
    with pytest.raises(ValueError, match="BI only"):
        open_eval_dataset(str(tmp_path / "clips"), lq="disk")
