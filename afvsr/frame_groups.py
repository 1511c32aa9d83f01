"""Frame-rate groups: which frames the method's groups hold, shared by the model and the data.

For a reference frame t, a window W (odd) and rates ``(r_1, ..., r_G)``, group g holds frames
``t + r_g * k`` for ``k = -W//2 .. W//2``. Past the clip's ends indices are mirrored without
repeating the edge frame (``-1 -> 1``, ``num_frames -> num_frames - 2``).
"""

from __future__ import annotations

from collections.abc import Sequence


def mirror_index(i: int, num_frames: int) -> int:
    """Reflect index ``i`` into ``[0, num_frames)`` without repeating the edge frame.

    ``-1 → 1``, ``-2 → 2``, ``num_frames → num_frames - 2``; repeated for indices further out
    (period ``2*(num_frames-1)``), and always 0 for a one-frame clip.
    """
    if num_frames == 1:
        return 0
    period = 2 * (num_frames - 1)
    i %= period
    return i if i < num_frames else period - i


def group_indices(t: int, num_frames: int, *, rates: Sequence[int], window: int) -> list[list[int]]:
    """Frame indices ``[G][W]`` of every group for reference frame ``t`` of a ``num_frames`` clip.

    Group g is ``[mirror(t + rates[g]*k) for k in -W//2..W//2]``; its middle entry is ``t``.
    """
    half = window // 2
    return [[mirror_index(t + r * k, num_frames) for k in range(-half, half + 1)] for r in rates]


def check_rates(rates: Sequence[int], window: int) -> tuple[int, ...]:
    """``rates`` as a tuple if it is a non-empty list of positive ints and ``window`` is odd,
    else ValueError saying what came in."""
    rates = tuple(rates)
    if not rates or not all(
        isinstance(r, int) and not isinstance(r, bool) and r >= 1 for r in rates
    ):
        raise ValueError(f"expected a non-empty list of positive integer rates, got {rates!r}")
    if not isinstance(window, int) or window < 1 or window % 2 == 0:
        raise ValueError(f"expected an odd window (frames per group) >= 1, got {window!r}")
    return rates
