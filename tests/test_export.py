"""ONNX export: onnxruntime matches PyTorch at sizes other than the traced one, the onnxruntime
backend pads, windows and crops, and the `afvsr export` command behaves like the others."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import afvsr  # noqa: E402
from afvsr.cli import main  # noqa: E402
from afvsr.errors import AfvsrError  # noqa: E402
from afvsr.export import DEFAULT_FRAMES, TRACE_SIZE, export_onnx  # noqa: E402
from afvsr.models import Bicubic, build_model  # noqa: E402
from afvsr.video.onnx_backend import OnnxModel, window_starts  # noqa: E402

TINY = {"mid_channels": 8, "num_blocks": 1}
N = 3  # frames per exported chunk
# Two sizes, neither the traced one nor a multiple of 32, one taller and one wider.
SIZES = [(12, 20), (19, 9)]
EXPORTED = {
    "basicvsr": ("basicvsr", {}),
    "basicvsr-one-way": ("basicvsr", {"flow_mode": "one-way"}),
    "afvsr": ("afvsr", {}),
    "afvsr-2heads": ("afvsr", {"num_heads": 2}),
}


def tiny_model(name: str, **extra) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(name, **TINY, **extra).eval()
    # An untrained SPyNet predicts almost no motion, which would hide a wrong warp in the graph:
    # bias each pyramid level's last conv so the flow is a few pixels.
    with torch.no_grad():
        for level in model.spynet.basic_module:
            level.body[-1].bias.copy_(torch.tensor([0.08, -0.05]))
    return model


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny clips: one thread is faster than two, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def ort_session(path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def export_cache(tmp_path_factory):
    """Each tiny model exported once per test module: ``key -> (model, path)``."""
    cache: dict[str, tuple[torch.nn.Module, object]] = {}

    def get(key: str):
        if key not in cache:
            name, extra = EXPORTED[key]
            model = tiny_model(name, **extra)
            path = export_onnx(model, tmp_path_factory.mktemp(key) / "m.onnx", num_frames=N)
            cache[key] = (model, path)
        return cache[key]

    return get


@pytest.fixture(params=list(EXPORTED))
def exported(request, export_cache):
    return export_cache(request.param)


def test_trace_size_is_not_a_test_size():
    assert TRACE_SIZE not in SIZES


def test_onnxruntime_matches_pytorch_at_two_sizes(exported):
    model, path = exported
    session = ort_session(path)
    (inp,) = session.get_inputs()
    assert inp.name == "lq" and inp.shape[:3] == [1, N, 3]
    assert isinstance(inp.shape[3], str) and isinstance(inp.shape[4], str)  # dynamic h, w
    with torch.no_grad():
        flow = model.spynet(torch.rand(2, 3, 12, 20), torch.rand(2, 3, 12, 20))
    assert flow.abs().amax() > 1.0  # the warps in the graph really move pixels
    for h, w in SIZES:
        lq = torch.rand(1, N, 3, h, w)
        with torch.no_grad():
            expected = model(lq).numpy()
        (out,) = session.run(None, {"lq": lq.numpy()})
        assert out.shape == (1, N, 3, 4 * h, 4 * w)
        assert np.abs(out - expected).max() < 1e-4, (h, w)


def test_metadata_describes_the_model(exported):
    model, path = exported
    net = OnnxModel(path, device="cpu")
    assert net.scale == 4 and net.num_frames == N
    assert net.metadata["mode"] == "sequence"
    assert net.family == afvsr.checkpoint.model_family(model)
    assert net.rates == getattr(model, "rates", None)
    assert net.providers == ["CPUExecutionProvider"]


def test_onnx_model_pads_short_clips_and_windows_long_ones(export_cache):
    model, path = export_cache("basicvsr")
    net = OnnxModel(path, device="cpu", threads=1)
    # Shorter than N: mirror-padded to N frames (0, 1 -> 0, 1, 0), output cropped back.
    lq = torch.rand(1, 2, 3, 10, 14)
    with torch.inference_mode():
        out = net(lq)
        expected = model(lq[:, [0, 1, 0]])[:, :2]
    assert out.shape == (1, 2, 3, 40, 56) and out.dtype == torch.float32
    assert (out - expected).abs().max() < 1e-4
    # Longer than N: windows [0, 3) and [2, 5) overlap on frame 2; the first owns frames 0, 1.
    assert window_starts(5, N) == [0, 2]
    lq = torch.rand(1, 5, 3, 10, 14)
    with torch.inference_mode(), pytest.warns(UserWarning, match="overlapping windows"):
        out = net(lq)
    with torch.inference_mode():
        first, last = model(lq[:, 0:3]), model(lq[:, 2:5])
    assert out.shape == (1, 5, 3, 40, 56)
    assert (out[:, :2] - first[:, :2]).abs().max() < 1e-4
    assert (out[:, 2:] - last).abs().max() < 1e-4


def test_upscale_video_runs_an_onnx_model(export_cache, tmp_path):
    from PIL import Image

    model, path = export_cache("basicvsr")
    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)).save(frames / f"{i}.png")
    # Chunks of 1 frame with 1 context frame per side: the middle frames come from 3-frame calls.
    kw = {"chunk": 1, "overlap": 1, "quiet": True}
    afvsr.upscale_video(frames, tmp_path / "onnx", model=OnnxModel(path, threads=1), **kw)
    afvsr.upscale_video(frames, tmp_path / "torch", model=model, **kw)
    read = lambda d: np.stack([np.asarray(Image.open(d / f"{i}.png")) for i in range(4)])  # noqa: E731
    onnx_frames, torch_frames = read(tmp_path / "onnx"), read(tmp_path / "torch")
    assert onnx_frames.shape == (4, 64, 80, 3)
    diff = onnx_frames[1:3].astype(int) - torch_frames[1:3].astype(int)
    assert np.abs(diff).max() <= 1  # one 8-bit level at most (rounding)


@pytest.mark.parametrize("t,n", [(4, 3), (5, 3), (11, 4), (57, 50), (200, 50), (9, 1)])
def test_window_starts_cover_the_clip_with_overlap(t, n):
    starts = window_starts(t, n)
    assert starts[0] == 0 and starts[-1] == t - n
    gaps = np.diff(starts)
    assert (gaps >= 1).all() and (n - gaps >= n // 4).all()  # neighbours overlap by >= n // 4


def test_cli_writes_the_file_and_keeps_an_existing_one_without_force(tmp_path, capsys):
    ckpt = tmp_path / "afvsr.safetensors"
    afvsr.save_model(tiny_model("afvsr", rates=[1, 2]), ckpt)
    out = tmp_path / "afvsr.onnx"
    out.write_bytes(b"keep me")
    assert main(["export", str(ckpt), "--onnx", str(out), "--frames", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("afvsr: error:") and "--force" in err and err.count("\n") == 1
    assert out.read_bytes() == b"keep me"

    assert main(["export", str(ckpt), "--onnx", str(out), "--frames", "2", "--force"]) == 0
    assert "wrote" in capsys.readouterr().out
    net = OnnxModel(out, device="cpu")
    assert net.num_frames == 2 and net.family == "afvsr" and net.metadata["source"] == str(ckpt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afvsr.onnx", "afvsr.safetensors"]


def test_cli_bad_model_path_is_one_line(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(tmp_path / "missing.safetensors"), "--onnx", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("afvsr: error: no model file") and err.count("\n") == 1
    assert not out.exists()


def test_export_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="BasicVSR or AFVSR"):
        export_onnx(Bicubic(scale=4), tmp_path / "b.onnx")
    model = tiny_model("basicvsr")
    with pytest.raises(ValueError, match="num_frames >= 1"):
        export_onnx(model, tmp_path / "b.onnx", num_frames=0)
    with pytest.raises(ValueError, match="opset >= 16"):
        export_onnx(model, tmp_path / "b.onnx", opset=13)
    assert not list(tmp_path.iterdir())


def test_onnx_model_rejects_files_it_cannot_run(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not an onnx file")
    with pytest.raises(AfvsrError, match="not a loadable ONNX model"):
        OnnxModel(junk, device="cpu")
    with pytest.raises(FileNotFoundError):
        OnnxModel(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="expected device"):
        OnnxModel(junk, device="tpu")


def test_default_frames_are_one_basicvsr_upscale_chunk_with_its_context():
    from afvsr.video.upscale import default_chunk, default_overlap

    overlap = default_overlap(tiny_model("basicvsr"))
    assert DEFAULT_FRAMES == default_chunk(overlap) + 2 * overlap
