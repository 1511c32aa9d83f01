"""Stage 0 training pieces: SPyNet learns from synthetic pairs; the "flow" task and its configs."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from afvsr import load_model, save_model
from afvsr.data.shared import shared_data_root
from afvsr.errors import AfvsrError
from afvsr.flow.losses import multiscale_epe_loss, pyramid_flows
from afvsr.flow.synthetic import MotionRange, SyntheticFlowPairs
from afvsr.models.spynet import SPyNet
from afvsr.train.config import load_config, resolve_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = [
    REPO / "configs" / "spynet_pretrain.toml",
    REPO / "configs" / "cpu" / "spynet_pretrain.toml",
]


def write_frames(folder: Path, n: int = 2) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        # Blurred noise: texture at every scale a patch needs, no flat areas.
        noise = torch.from_numpy(rng.uniform(size=(1, 3, 60, 70)).astype(np.float32))
        img = torch.nn.functional.interpolate(noise, size=(240, 280), mode="bicubic").clamp(0, 1)
        path = folder / f"{i:05d}.png"
        array = (img[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(array).save(path)
        paths.append(path)
    return paths


def test_a_few_steps_reduce_epe_on_a_fixed_batch(tmp_path):
    torch.manual_seed(0)
    ds = SyntheticFlowPairs(
        write_frames(tmp_path),
        patch_size=32,
        downscales=[2],
        motion=MotionRange(max_translation=3.0, max_flow=4.0),
        length=2,
        seed=0,
    )
    batch = {k: torch.stack([ds[i][k] for i in range(2)]) for k in ("ref", "supp", "flow")}
    net = SPyNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    epes = []
    for _ in range(8):
        flows = pyramid_flows(net, batch["ref"], batch["supp"])
        loss, final = multiscale_epe_loss(flows, batch["flow"], [1.0] * 6)
        epes.append(final.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(np.isfinite(epes))
    assert min(epes[-2:]) < 0.7 * epes[0], epes


def test_spynet_model_file_round_trip(tmp_path):
    net = SPyNet()
    path = tmp_path / "spynet.safetensors"
    save_model(net, path)
    loaded = load_model(path)
    assert isinstance(loaded, SPyNet)
    assert all(
        torch.equal(a, b)
        for a, b in zip(net.state_dict().values(), loaded.state_dict().values(), strict=True)
    )


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name + "/" + p.name)
def test_shipped_configs_resolve(path):
    cfg = load_config(path)
    assert cfg["run"]["task"] == "flow" and cfg["model"] == {"name": "spynet"}
    assert cfg["data"]["patch_size"] % 32 == 0


def raw_config(**data):
    return {
        "run": {"task": "flow"},
        "model": {"name": "spynet"},
        "data": data,
        "train": {"iterations": 10},
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"patch_size": 48}, "patch_size: expected a positive multiple of 32"),
        ({"pairs": "chairs"}, "pairs: expected one of"),
        ({"downscales": [1, 2], "render_scale": 2}, "render_scale: expected 1 .. min"),
        ({"level_weights": [0.0]}, "level_weights"),
        ({"max_flow": 0.0}, r"\[data\] max_flow: expected a value > 0"),
    ],
)
def test_bad_flow_configs_are_errors_naming_the_key(data, message):
    with pytest.raises(AfvsrError, match=message):
        resolve_config(raw_config(**data), "x.toml")


def test_task_model_groups_loss_and_checkpoint(tmp_path):
    from afvsr.train.flow_task import FlowTask

    path = tmp_path / "start.safetensors"
    start = SPyNet()
    save_model(start, path)
    cfg = resolve_config(raw_config(), "x.toml")
    cfg["train"]["spynet_checkpoint"] = str(path)
    task = FlowTask(cfg)
    model = task.build_model()
    assert model.training
    assert torch.equal(model.basic_module[0].body[0].weight, start.basic_module[0].body[0].weight)
    (group,) = task.param_groups(model)
    assert len(group.parameters()) == len(list(model.parameters()))

    batch = {"ref": torch.rand(2, 3, 32, 32), "supp": torch.rand(2, 3, 32, 32)}
    loss, logs = task.loss(model, {**batch, "flow": torch.zeros(2, 2, 32, 32)})
    assert loss.ndim == 0 and set(logs) == {"epe"} and loss.item() >= logs["epe"].item()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    loss, logs = task.loss(model, batch)  # no ground truth: the unsupervised loss
    assert loss.ndim == 0 and set(logs) == {"photo", "census", "smooth"}


@pytest.mark.slow
@pytest.mark.skipif(shared_data_root() is None, reason="../shared/data (real frames) not present")
def test_task_datasets_and_validation_on_the_shared_data():
    from afvsr.train.flow_task import FlowTask

    cfg = resolve_config(raw_config(), "x.toml")
    cfg["val"].update(num_pairs=2, num_real_pairs=2, batch_size=2)
    task = FlowTask(cfg)
    train = task.build_train_dataset()
    assert len(train) > 1000  # the 17 DAVIS training sequences, one sample per frame
    assert all("blackswan" not in str(p) and "soapbox" not in str(p) for p in train.frames)
    model = SPyNet().eval()
    with torch.inference_mode():
        result = task.validate(model, torch.device("cpu"))
    for key in ("epe", "epe_zero_flow", "warp_psnr", "warp_psnr_zero_flow"):
        assert np.isfinite(result.metrics[key]), key
    assert all(img.ndim == 3 and img.shape[0] == 3 for img in result.images.values())


def test_task_initialises_spynet_so_activations_keep_their_scale():
    from afvsr.train.flow_task import FlowTask

    model = FlowTask(resolve_config(raw_config(), "x.toml")).build_model()
    level = model.basic_module[-1]
    x = torch.randn(2, 8, 32, 32)
    stds = []
    for layer in level.body:
        x = layer(x)
        if isinstance(layer, torch.nn.ReLU):
            stds.append(x.std().item())
    assert 0.3 < min(stds) and max(stds) < 3, stds  # PyTorch's default: 0.3 down to 0.02
    assert x.abs().max() == 0  # the last conv starts at zero: no flow before training
    with torch.no_grad():
        assert model(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)).abs().max() == 0


def test_real_pairs_are_the_same_crop_of_consecutive_frames(tmp_path):
    from afvsr.flow.real import RealFramePairs

    base = write_frames(tmp_path, n=1)[0]
    img = np.asarray(Image.open(base))
    sequence = []
    for k in range(3):  # frame k is the image moved 2k px to the right
        path = tmp_path / f"seq_{k}.png"
        Image.fromarray(np.roll(img, 2 * k, axis=1)).save(path)
        sequence.append(path)
    ds = RealFramePairs([sequence, sequence[:1]], patch_size=32, downscales=[2], seed=5)
    assert len(ds) == 2  # two pairs; a one-frame sequence has none
    a, b = ds[0], RealFramePairs([sequence], patch_size=32, downscales=[2], seed=5)[0]
    assert all(torch.equal(a[k], b[k]) for k in ("ref", "supp"))
    assert a["ref"].shape == a["supp"].shape == (3, 32, 32)
    # The two frames differ by a 1 LR px shift (2 px at x2): flipped or swapped, the zero-flow
    # error is well above the error after the best 1 px shift either way.
    ref, supp = a["ref"], a["supp"]
    best = min((ref[..., 2:-2] - supp[..., 2 + d : 30 + d]).abs().mean() for d in (-1, 1))
    assert best < 0.5 * (ref - supp).abs().mean()


def test_best_metric_follows_the_stage():
    from afvsr.train.flow_task import FlowTask

    synthetic = FlowTask(resolve_config(raw_config(), "x.toml"))
    assert (synthetic.best_metric, synthetic.best_mode) == ("epe", "min")
    real = FlowTask(resolve_config(raw_config(pairs="real"), "x.toml"))
    assert (real.best_metric, real.best_mode) == ("warp_psnr", "max")
    with pytest.raises(AfvsrError, match=r"\[val\] best"):
        resolve_config({**raw_config(), "val": {"best": "psnr"}}, "x.toml")


def test_flow_imports_nothing_from_train():
    # The dependency is one-way: afvsr.train (its "flow" task) uses afvsr.flow, never back.
    code = (
        "import sys, afvsr.flow.cli, afvsr.flow.evaluate, afvsr.flow.pairs, afvsr.flow.losses;"
        "print(sorted(m for m in sys.modules if m.startswith('afvsr.train')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_flow_eval_is_an_afvsr_command_with_one_line_errors(tmp_path, capsys):
    from afvsr.cli import main
    from afvsr.flow.evaluate import main as old_spelling

    missing = tmp_path / "missing.safetensors"
    for run in (lambda: main(["flow-eval", str(missing)]), lambda: old_spelling([str(missing)])):
        assert run() == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("afvsr: error: ") and str(missing) in err[0]
    bad = tmp_path / "bad.toml"
    bad.write_text('[data]\npairs = "chairs"\n')
    assert main(["flow-eval", "zero", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"afvsr: error: {bad}: [data] pairs: expected one of ['synthetic', 'real'], got 'chairs'"
    )
