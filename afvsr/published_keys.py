"""Tensor names of BasicSR's and mmagic's (MMEditing's) BasicVSR, IconVSR, SPyNet and EDVR
extractor, from afvsr's names.

Read from their sources (BasicSR ``basicsr/archs/{basicvsr,spynet,edvr}_arch.py``; mmagic
``mmagic/models/editors/{basicvsr/basicvsr_net,iconvsr/iconvsr_net,edvr/edvr_net}.py`` and
``mmagic/models/archs/upsample.py``): the two projects name the same layers differently, and
mmagic wraps most convs in mmcv's ``ConvModule`` (``….conv.weight``).

Main correspondences (afvsr → BasicSR | mmagic):

- ``spynet.basic_module.L.body.J`` → ``spynet.basic_module.L.basic_module.J`` |
  ``spynet.basic_module.L.basic_module.{J/2}.conv``
- ``propagation.backward_branch.conv_in`` / ``.blocks.i`` → ``backward_trunk.main.0`` /
  ``.main.2.i`` | ``backward_resblocks.main.0`` / ``.main.2.i`` (forward likewise)
- ``propagation.fusion`` → ``fusion``; ``reconstruction.upsample.body.0`` / ``.3`` →
  ``upconv1`` / ``upconv2`` | ``upsample1.upsample_conv`` / ``upsample2.upsample_conv``
- IconVSR's ``extractor.`` → ``edvr.``; its PCD ``levels.0/1/2`` → ``pcd_align.*.l3/l2/l1`` |
  ``pcd_alignment.*.l3/l2/l1``; TSA ``temporal.embed_ref/embed`` → ``fusion.temporal_attn1/2``.

Layouts hold only ×4 networks with a 64-channel ``conv_hr`` (both projects hard-code it).
"""

from __future__ import annotations

import re
from collections.abc import Callable

LAYOUTS = ("basicsr", "mmagic")

# (afvsr pattern, BasicSR name, mmagic name); names are ``re.Match.expand`` templates or
# functions of the match. Patterns are relative to the sub-network's root.
Rule = tuple[str, str | Callable[[re.Match], str], str | Callable[[re.Match], str]]

_W = r"(weight|bias)"

SPYNET_RULES: list[Rule] = [
    (
        rf"basic_module\.(\d+)\.body\.(\d+)\.{_W}",
        r"basic_module.\1.basic_module.\2.\3",
        lambda m: f"basic_module.{m[1]}.basic_module.{int(m[2]) // 2}.conv.{m[3]}",
    ),
]

VSR_RULES: list[Rule] = [
    (
        rf"propagation\.(backward|forward)_branch\.conv_in\.{_W}",
        r"\1_trunk.main.0.\2",
        r"\1_resblocks.main.0.\2",
    ),
    (
        rf"propagation\.(backward|forward)_branch\.blocks\.(\d+)\.(conv[12])\.{_W}",
        r"\1_trunk.main.2.\2.\3.\4",
        r"\1_resblocks.main.2.\2.\3.\4",
    ),
    (rf"propagation\.(fusion|backward_fusion|forward_fusion)\.{_W}", r"\1.\2", r"\1.\2"),
    (rf"reconstruction\.upsample\.body\.0\.{_W}", r"upconv1.\1", r"upsample1.upsample_conv.\1"),
    (rf"reconstruction\.upsample\.body\.3\.{_W}", r"upconv2.\1", r"upsample2.upsample_conv.\1"),
    (rf"reconstruction\.(conv_hr|conv_last)\.{_W}", r"\1.\2", r"\1.\2"),
]


def _level(m: re.Match) -> str:
    """afvsr's PCD level index (0 = coarsest) → their level name (``l3`` = coarsest)."""
    return f"l{3 - int(m[1])}"


EDVR_RULES: list[Rule] = [
    (rf"pyramid\.extraction\.conv_in\.{_W}", r"conv_first.\1", r"conv_first.\1"),
    (
        rf"pyramid\.extraction\.blocks\.(\d+)\.(conv[12])\.{_W}",
        r"feature_extraction.\1.\2.\3",
        r"feature_extraction.\1.\2.\3",
    ),
    (rf"pyramid\.conv_l([23])_([12])\.{_W}", r"conv_l\1_\2.\3", r"feat_l\1_conv\2.conv.\3"),
    (
        rf"pcd\.levels\.([012])\.(offset_conv[123]|feat_conv)\.{_W}",
        lambda m: f"pcd_align.{m[2]}.{_level(m)}.{m[3]}",
        lambda m: f"pcd_alignment.{m[2]}.{_level(m)}.conv.{m[3]}",
    ),
    (
        rf"pcd\.levels\.([012])\.dcn\.dcn\.{_W}",
        lambda m: f"pcd_align.dcn_pack.{_level(m)}.{m[2]}",
        lambda m: f"pcd_alignment.dcn_pack.{_level(m)}.{m[2]}",
    ),
    (
        rf"pcd\.levels\.([012])\.dcn\.conv_offset\.{_W}",
        lambda m: f"pcd_align.dcn_pack.{_level(m)}.conv_offset.{m[2]}",
        lambda m: f"pcd_alignment.dcn_pack.{_level(m)}.conv_offset.{m[2]}",
    ),
    (
        rf"pcd\.cascade_offset_conv([12])\.{_W}",
        r"pcd_align.cas_offset_conv\1.\2",
        r"pcd_alignment.cas_offset_conv\1.conv.\2",
    ),
    (rf"pcd\.cascade_dcn\.dcn\.{_W}", r"pcd_align.cas_dcnpack.\1", r"pcd_alignment.cas_dcnpack.\1"),
    (
        rf"pcd\.cascade_dcn\.conv_offset\.{_W}",
        r"pcd_align.cas_dcnpack.conv_offset.\1",
        r"pcd_alignment.cas_dcnpack.conv_offset.\1",
    ),
    (rf"tsa\.temporal\.embed_ref\.{_W}", r"fusion.temporal_attn1.\1", r"fusion.temporal_attn1.\1"),
    (rf"tsa\.temporal\.embed\.{_W}", r"fusion.temporal_attn2.\1", r"fusion.temporal_attn2.\1"),
    (rf"tsa\.feat_fusion\.{_W}", r"fusion.feat_fusion.\1", r"fusion.feat_fusion.conv.\1"),
    # mmagic: every spatial-attention conv is a ConvModule except attn5 and attn_add2 (no act).
    (rf"tsa\.spatial\.(attn5|attn_add2)\.{_W}", r"fusion.spatial_\1.\2", r"fusion.spatial_\1.\2"),
    (
        rf"tsa\.spatial\.(attn\d|attn_l\d|attn_add1)\.{_W}",
        r"fusion.spatial_\1.\2",
        r"fusion.spatial_\1.conv.\2",
    ),
]

# Sub-network prefixes: afvsr's → theirs, and the rules inside.
SUBNETS: tuple[tuple[str, str, list[Rule]], ...] = (
    ("spynet.", "spynet.", SPYNET_RULES),
    ("extractor.", "edvr.", EDVR_RULES),
)

# The rules a whole file of each family uses at its root.
ROOT_RULES: dict[str, list[Rule]] = {
    "spynet": SPYNET_RULES,
    "edvr": EDVR_RULES,
    "basicvsr": VSR_RULES,
    "iconvsr": VSR_RULES,
}


def _apply(rules: list[Rule], name: str, layout: str) -> str:
    for pattern, basicsr, mmagic in rules:
        m = re.fullmatch(pattern, name)
        if m:
            template = basicsr if layout == "basicsr" else mmagic
            return template(m) if callable(template) else m.expand(template)
    raise KeyError(name)


def published_name(family: str, name: str, layout: str) -> str:
    """The name in ``layout`` ("basicsr" | "mmagic") of afvsr tensor ``name`` of a ``family``
    ("spynet", "basicvsr", "iconvsr" or "edvr", the IconVSR extractor on its own) state dict.

    ``published_name("basicvsr", "propagation.fusion.weight", "basicsr") == "fusion.weight"``;
    KeyError for a name with no published counterpart (e.g. an AFVSR model's attention).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"expected a layout in {LAYOUTS}, got {layout!r}")
    if family in ("basicvsr", "iconvsr"):
        for ours, theirs, rules in SUBNETS:
            if name.startswith(ours):
                return theirs + _apply(rules, name[len(ours) :], layout)
    return _apply(ROOT_RULES[family], name, layout)
