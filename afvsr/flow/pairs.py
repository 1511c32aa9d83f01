"""Stage 0's training and validation pairs from the ``[data]`` section of a "flow" config.

``DATA_FIELDS`` declares the section (which pairs, the patch, the synthetic motion and
photometric ranges); ``synthetic_pairs`` / ``held_out_synthetic`` / ``real_pairs`` build the
datasets from a checked section (``afvsr.schema.check_section(values, DATA_FIELDS, "data")`` and
``check_data_relations``).
"""

from __future__ import annotations

from typing import Any

from afvsr.data.shared import require_shared_data_root, shared_clips
from afvsr.flow.real import RealFramePairs
from afvsr.flow.synthetic import MotionRange, PhotometricRange, SyntheticFlowPairs
from afvsr.schema import ConfigError, Field

PAIRS = ("synthetic", "real")

DATA_FIELDS: dict[str, Field] = {
    "root": Field("", help='shared data folder; "" = $AFVSR_SHARED_DATA or ../shared/data'),
    "pairs": Field("synthetic", choices=PAIRS, help="synthetic (supervised) | real (unsupervised)"),
    "patch_size": Field(64, help="LR patch side, a positive multiple of 32"),
    "downscales": Field([2, 3, 4], ge=1, length=(1, 16), help="source -> LR factors, one per pair"),
    "render_scale": Field(2, help="warp rendered at this multiple of LR (1 .. min(downscales))"),
    # Synthetic flow fields, in LR pixels (afvsr.flow.synthetic.MotionRange):
    "max_translation": Field(12.0, ge=0, help="length = max * U(0,1)^2, uniform direction"),
    "max_rotation_deg": Field(3.0, ge=0, help="rotation ~ U(-max, max) degrees"),
    "max_zoom": Field(0.05, ge=0, help="relative scale change ~ U(-max, max)"),
    "max_shear": Field(0.03, ge=0, help="shear/stretch components ~ U(-max, max)"),
    "local_amplitude": Field(1.5, ge=0, help="std of a coarse random displacement grid"),
    "local_grid_max": Field(5, ge=2, help="that grid has 2..local_grid_max nodes per axis"),
    "num_bumps": Field(3, ge=0, help="up to this many Gaussian bumps of local motion"),
    "bump_amplitude": Field(3.0, ge=0, help="largest displacement at a bump's centre"),
    "bump_sigma": Field([6.0, 20.0], gt=0, length=(2, 2), help="[min, max] width of a bump"),
    "max_flow": Field(16.0, gt=0, help="fields are scaled down to at most this displacement"),
    # Photometric changes, independent per frame (PhotometricRange):
    "brightness": Field(0.05, ge=0, help="gain 1 +- brightness"),
    "color": Field(0.02, ge=0, help="per-channel gain 1 +- color"),
    "noise": Field(0.01, ge=0, help="Gaussian noise std ~ U(0, noise)"),
}


def check_data_relations(data: dict[str, Any]) -> None:
    """Checks between keys of a checked ``[data]`` section; ConfigError ``[data] …``."""
    p = data["patch_size"]
    if p < 32 or p % 32:
        raise ConfigError(f"[data] patch_size: expected a positive multiple of 32, got {p}")
    scales = data["downscales"]
    if not 1 <= data["render_scale"] <= min(scales):
        raise ConfigError(
            f"[data] render_scale: expected 1 .. min(downscales) = {min(scales)}, "
            f"got {data['render_scale']}"
        )
    lo, hi = data["bump_sigma"]
    if not lo <= hi:
        raise ConfigError(f"[data] bump_sigma: expected [min, max] with min <= max, got {[lo, hi]}")


def motion_range(data: dict[str, Any]) -> MotionRange:
    return MotionRange(
        max_translation=data["max_translation"],
        max_rotation_deg=data["max_rotation_deg"],
        max_zoom=data["max_zoom"],
        max_shear=data["max_shear"],
        local_amplitude=data["local_amplitude"],
        local_grid_max=data["local_grid_max"],
        num_bumps=data["num_bumps"],
        bump_amplitude=data["bump_amplitude"],
        bump_sigma=tuple(data["bump_sigma"]),
        max_flow=data["max_flow"],
    )


def photometric_range(data: dict[str, Any]) -> PhotometricRange:
    return PhotometricRange(brightness=data["brightness"], color=data["color"], noise=data["noise"])


def _clips(data: dict[str, Any], split: str):
    return shared_clips(require_shared_data_root(data["root"] or None), split)


def synthetic_pairs(data: dict[str, Any], split: str, **kwargs) -> SyntheticFlowPairs:
    """``SyntheticFlowPairs`` over the frames of ``split`` ("train"/"val") with the ``[data]``
    settings; ``kwargs`` go to its constructor (``length``, ``seed``, ``skip_small``)."""
    frames = [path for clip in _clips(data, split) for path in clip.gt_paths]
    return SyntheticFlowPairs(
        frames,
        patch_size=data["patch_size"],
        downscales=data["downscales"],
        render_scale=data["render_scale"],
        motion=motion_range(data),
        photometric=photometric_range(data),
        **kwargs,
    )


def held_out_synthetic(data: dict[str, Any], *, num_pairs: int, seed: int) -> SyntheticFlowPairs:
    """The held-out synthetic pairs: ``num_pairs`` from the validation frames, a fixed ``seed``
    (frames too small for every downscale, e.g. Vimeo's at ×4, are left out)."""
    return synthetic_pairs(data, "val", length=num_pairs, seed=seed, skip_small=True)


def real_pairs(data: dict[str, Any], split: str) -> RealFramePairs:
    """Consecutive real frames of ``split`` as LR pairs (the unsupervised stage)."""
    return RealFramePairs(
        [clip.gt_paths for clip in _clips(data, split)],
        patch_size=data["patch_size"],
        downscales=data["downscales"],
    )
