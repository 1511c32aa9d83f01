"""Windows over a clip, in one place: mirroring at its ends, windows and frame-rate groups around a
frame, and evenly spread overlapping spans (frame windows or spatial tiles) with who owns what.

Every windowing rule of the package calls these: the method's frame-rate groups (model and data,
``afvsr.frame_groups``), windowed evaluation of a recurrent model
(``afvsr.evaluation.evaluate.window_indices``), IconVSR's keyframe windows, the ONNX backend's
fixed-length windows over a longer clip, and the spatial tiles of ``afvsr upscale``
(``afvsr.video.chunking``, which also cuts the stream into temporal chunks with context).
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


def window_indices(t: int, num_frames: int, window: int, *, rate: int = 1) -> list[int]:
    """The ``window`` frames ``t + rate*k``, ``k = -window//2 .. window//2``, mirrored into the
    clip: ``window_indices(0, 10, 5) == [2, 1, 0, 1, 2]``; the middle entry is ``t``."""
    half = window // 2
    return [mirror_index(t + rate * k, num_frames) for k in range(-half, half + 1)]


def group_indices(t: int, num_frames: int, *, rates: Sequence[int], window: int) -> list[list[int]]:
    """Frame indices ``[G][W]`` of every frame-rate group for reference frame ``t``: group g is
    :func:`window_indices` with ``rate=rates[g]``."""
    return [window_indices(t, num_frames, window, rate=r) for r in rates]


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


def span_starts(length: int, size: int, min_overlap: int) -> list[int]:
    """Start offsets of the fewest spans of ``size`` covering ``[0, length)`` with neighbours
    overlapping by at least ``min_overlap``, spread evenly (every span is full-size if
    ``length >= size``; one span at 0 otherwise)."""
    if size <= min_overlap:
        raise ValueError(
            f"expected a span longer than its overlap, got size={size}, overlap={min_overlap}"
        )
    if length <= size:
        return [0]
    n = 1 + -(-(length - size) // (size - min_overlap))  # ceil: spacing <= size - overlap
    return [round(i * (length - size) / (n - 1)) for i in range(n)]


def owned_ranges(starts: Sequence[int], size: int, length: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` owned by each span of :func:`span_starts`: from the middle of its overlap
    with the previous span to the middle of its overlap with the next, so every index is owned
    once, by a span in which it lies far from a cut edge."""
    ranges = []
    for k, s in enumerate(starts):
        lo = 0 if k == 0 else (s + starts[k - 1] + size) // 2
        hi = length if k == len(starts) - 1 else (starts[k + 1] + s + size) // 2
        ranges.append((lo, hi))
    return ranges
