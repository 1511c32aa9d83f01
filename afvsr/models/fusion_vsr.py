"""The method's module under its earlier name: it is :mod:`afvsr.models.afvsr_net` now."""

from __future__ import annotations

from afvsr.models.afvsr_net import (
    AFVSR,
    GROUP_FUSIONS,
    MODES,
    AttentionFusionVSR,
    check_afvsr_args,
    group_indices,
)

__all__ = [
    "AFVSR",
    "GROUP_FUSIONS",
    "MODES",
    "AttentionFusionVSR",
    "check_afvsr_args",
    "group_indices",
]
