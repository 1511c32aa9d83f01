"""Frame-rate groups: which frames the method's groups hold, shared by the model and the data.

For a reference frame t, a window W (odd) and rates ``(r_1, ..., r_G)``, group g holds frames
``t + r_g * k`` for ``k = -W//2 .. W//2``. Past the clip's ends indices are mirrored without
repeating the edge frame (``-1 -> 1``, ``num_frames -> num_frames - 2``). The rules live in
:mod:`afvsr.windows` (every window of the package); these names are kept for their callers.
"""

from __future__ import annotations

from afvsr.windows import check_rates, group_indices, mirror_index

__all__ = ["check_rates", "group_indices", "mirror_index"]
