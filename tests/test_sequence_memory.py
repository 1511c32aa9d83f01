"""AFVSR's ``sequence`` mode, run frame by frame: same numbers, bounded memory."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from afvsr.models import AFVSR, BasicVSR


def whole_clip_path(model: AFVSR, lq: torch.Tensor, keep: slice) -> torch.Tensor:
    """The previous implementation: every group's features for every frame, then fuse."""
    return model.fuse_and_reconstruct(model.sequence_features(lq)[:, keep], lq[:, keep])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rates": (1, 2, 3), "num_heads": 1},
        {"rates": (1, 3, 5), "num_heads": 2},
        {"rates": (2, 1, 2), "num_heads": 1},  # a repeated rate shares its features
        {"rates": (1, 2), "group_fusion": "mean"},
    ],
)
@pytest.mark.parametrize(
    "t,keep", [(7, slice(None)), (9, slice(2, 6)), (1, slice(None)), (2, slice(1, 2))]
)
def test_frame_by_frame_sequence_equals_the_whole_clip_path(kwargs, t, keep):
    torch.manual_seed(0)
    model = AFVSR(mid_channels=8, num_blocks=1, window=3, **kwargs).eval()
    lq = torch.rand(2, t, 3, 12, 20)
    with torch.inference_mode():
        new = model(lq, mode="sequence", frames=keep)
        old = whole_clip_path(model, lq, keep)
    assert new.shape == old.shape == (2, len(range(t)[keep]), 3, 48, 80)
    assert (new - old).abs().max().item() <= 1e-6


class LargestTensor(TorchDispatchMode):
    """Records the element count of the largest tensor any op produces."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for x in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(x, torch.Tensor):
                self.largest = max(self.largest, x.numel())
        return out


def test_no_tensor_holds_every_group_of_every_frame():
    """The largest tensor in sequence mode is no larger than BasicVSR's (whose reconstruction
    batches frames); the old path built one of t x G x channels x h x w."""
    c, t, h, w = 64, 12, 32, 32
    method = AFVSR(mid_channels=c, num_blocks=0, rates=(1, 2, 3), window=3).eval()
    basic = BasicVSR(mid_channels=c, num_blocks=0).eval()
    lq = torch.rand(1, t, 3, h, w)
    sizes = {}
    for name, call in [
        ("afvsr", lambda: method(lq, mode="sequence")),
        ("basicvsr", lambda: basic(lq)),
        ("old", lambda: whole_clip_path(method, lq, slice(None))),
    ]:
        with torch.inference_mode(), LargestTensor() as probe:
            call()
        sizes[name] = probe.largest
    assert sizes["old"] >= t * 3 * c * h * w
    assert sizes["afvsr"] <= sizes["basicvsr"] and sizes["afvsr"] < t * 3 * c * h * w
