"""Cut a stream of frames into overlapping temporal chunks, and frames into overlapping tiles.

Temporal chunks: bidirectional recurrent models (BasicVSR and its family) propagate information
across the whole clip, so a chunk of ``chunk`` frames is processed together with ``overlap``
context frames on each side, whose outputs are dropped at the joins. Only ``chunk + 2*overlap``
frames (plus a few frames of look-ahead) are ever held, whatever the length of the video.
A chunk boundary is moved to a scene cut when one lies within ``chunk // 4`` frames of it: across
a cut there is nothing for propagation to carry, so the join is invisible there.

Spatial tiles: for large frames the model runs on ``tile x tile`` crops overlapping by
``tile_overlap`` pixels; each output pixel is taken from the tile in which it lies farthest from an
edge ("crop") or the overlaps are cross-faded ("blend").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from afvsr.windows import span_starts

# Scene-cut score above which a frame pair counts as a cut. Measured on DAVIS-2016 (LR frames,
# every 2nd frame, so twice the real motion): within-shot pairs score at most 0.19 (99th
# percentile 0.15); pairs across two different sequences score 0.25 or more for 95%.
# A false cut only moves a chunk boundary by a few frames, so the threshold need not be tight.
CUT_THRESHOLD = 0.25


@dataclass(frozen=True)
class TemporalChunk:
    """Frames ``start .. start + len(lq) - 1`` of the stream; ``lq[keep]`` are this chunk's own.

    ``lq``: ``(t, 3, h, w)``, the chunk with its context frames. ``at_cut``: the chunk ends at a
    detected scene cut (its boundary was moved there).
    """

    lq: Tensor
    start: int
    keep: slice
    at_cut: bool = False

    @property
    def first(self) -> int:
        """Index (in the stream) of the first frame this chunk outputs."""
        return self.start + self.keep.start

    @property
    def stop(self) -> int:
        """Index after the last frame this chunk outputs."""
        return self.start + self.keep.stop


def frame_signature(frame: Tensor) -> tuple[Tensor, Tensor]:
    """A cheap description of a ``(3, h, w)`` frame: a 16x16 thumbnail and 16-bin histograms.

    Both come from a 64x64 area-average of the frame, so the cost does not grow with its size.
    """
    small = F.adaptive_avg_pool2d(frame[None].float(), (64, 64))[0]  # (3, 64, 64)
    thumb = F.avg_pool2d(small[None], 4)[0]  # (3, 16, 16)
    channel = 16 * torch.arange(3, device=frame.device).view(3, 1, 1)
    bins = (small * 16).long().clamp_(0, 15) + channel  # (3, 64, 64) bin of each pixel
    hist = torch.bincount(bins.flatten(), minlength=48).view(3, 16).float()
    return thumb, hist / hist.sum(dim=1, keepdim=True)  # (3, 16) rows sum to 1


def cut_score(a: tuple[Tensor, Tensor], b: tuple[Tensor, Tensor]) -> float:
    """Scene-cut score in [0, 1] of two frame signatures: high only if colours *and* layout change.

    The histogram distance (half the L1, averaged over channels) ignores motion; the thumbnail
    difference (doubled) ignores a global colour change of one shot. A cut changes both.
    """
    hist_dist = 0.5 * (a[1] - b[1]).abs().sum(dim=1).mean()
    thumb_dist = 2.0 * (a[0] - b[0]).abs().mean()
    return float(torch.minimum(hist_dist, thumb_dist))


def temporal_chunks(
    frames: Iterable[Tensor],
    *,
    chunk: int,
    overlap: int,
    cut_search: int | None = None,
    cut_threshold: float = CUT_THRESHOLD,
    store: Callable[[Tensor], Tensor] | None = None,
) -> Iterator[TemporalChunk]:
    """Group a stream of ``(3, h, w)`` frames into overlapping chunks, lazily.

    Args:
        frames: any iterable of ``(3, h, w)`` tensors (consumed once, never held whole).
        chunk: nominal number of output frames per chunk (>= 1).
        overlap: context frames on each side of a chunk (>= 0), dropped from its output.
        cut_search: how far (frames) a boundary may move to reach a scene cut; default
            ``chunk // 4``; 0 disables the scene-cut placement. The last chunk also absorbs a
            remainder of up to ``cut_search`` frames instead of leaving a tiny final chunk.
        cut_threshold: the :func:`cut_score` above which a frame pair is a cut.
        store: how a frame is held until its chunks are done (e.g. :func:`to_uint16`, exact for
            8- and 16-bit sources at half the memory of float32, or :func:`to_compact`, uint8
            for 8-bit frames); default: as it comes. A chunk's ``lq`` is the only copy of its
            frames: those kept for the next chunk are views of it.

    Yields:
        :class:`TemporalChunk` in order; their kept frames tile the stream exactly once.
    """
    if chunk < 1 or overlap < 0:
        raise ValueError(
            f"expected chunk >= 1 and overlap >= 0, got chunk={chunk}, overlap={overlap}"
        )
    search = chunk // 4 if cut_search is None else cut_search
    if search < 0:
        raise ValueError(f"expected cut_search >= 0, got {cut_search}")
    it = iter(frames)
    buf: list[Tensor] = []  # frames buf_start .. buf_start + len(buf) - 1
    scores: list[float] = []  # scores[k]: cut score between buf[k - 1] and buf[k]
    buf_start, start, exhausted = 0, 0, False
    last_sig = None
    while True:
        need = start + chunk + search + overlap  # frames to look at before deciding the boundary
        while not exhausted and buf_start + len(buf) < need:
            try:
                frame = next(it)
            except StopIteration:
                exhausted = True
                break
            sig = frame_signature(frame) if search else None
            scores.append(cut_score(last_sig, sig) if last_sig is not None else 0.0)
            last_sig = sig
            buf.append(frame if store is None else store(frame))
        end = buf_start + len(buf)
        if start >= end:
            return
        nominal = start + chunk
        at_cut = False
        if exhausted and end <= nominal + search:
            stop = end  # the rest fits in this chunk
        else:
            stop = nominal
            lo, hi = max(start + 1, nominal - search), min(nominal + search, end - 1)
            # Best cut in the window; among equal scores the one nearest the nominal boundary.
            best = max(
                range(lo, hi + 1),
                key=lambda p: (scores[p - buf_start], -abs(p - nominal)),
                default=None,
            )
            if search and best is not None and scores[best - buf_start] >= cut_threshold:
                stop, at_cut = best, True
        ctx_start, ctx_stop = max(0, start - overlap), min(end, stop + overlap)
        lq = stack_stored(buf[ctx_start - buf_start : ctx_stop - buf_start])  # (t, 3, h, w)
        buf[ctx_start - buf_start : ctx_stop - buf_start] = lq.unbind(0)  # views: one copy held
        yield TemporalChunk(
            lq=lq, start=ctx_start, keep=slice(start - ctx_start, stop - ctx_start), at_cut=at_cut
        )
        start = stop
        drop = max(0, start - overlap) - buf_start  # frames no later chunk will need
        del buf[:drop], scores[:drop]
        buf_start += drop


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of the fewest tiles of size ``tile`` covering ``[0, length)`` with neighbours
    overlapping by at least ``overlap``, spread evenly (``afvsr.windows.span_starts``)."""
    if tile <= overlap:
        raise ValueError(f"expected tile > tile_overlap, got tile={tile}, tile_overlap={overlap}")
    return span_starts(length, tile, overlap)


def _axis_weights(starts: list[int], size: int, length: int, scale: int, blend: bool) -> Tensor:
    """Weights ``(num_tiles, scale*size)`` along one axis, in output pixels, summing to 1.

    A tile's "depth" at a pixel is its distance to the nearest tile edge that is not an edge of
    the frame. Crop: each pixel comes from the deepest tile. Blend: weights grow linearly with
    depth over ``scale * overlap`` pixels, then are normalised.
    """
    if len(starts) == 1:
        return torch.ones(1, scale * size)
    pos = torch.arange(scale * length, dtype=torch.float32) + 0.5  # output pixel centres
    depth = torch.full((len(starts), scale * length), -1.0)
    for i, s in enumerate(starts):
        lo, hi = scale * s, scale * (s + size)
        d_lo = pos - lo if s > 0 else torch.full_like(pos, float("inf"))
        d_hi = hi - pos if s + size < length else torch.full_like(pos, float("inf"))
        inside = (pos > lo) & (pos < hi)
        depth[i] = torch.where(inside, torch.minimum(d_lo, d_hi), depth[i])
    if blend:
        overlap = min(
            (a + size - b) for a, b in zip(starts, starts[1:], strict=False)
        )  # narrowest overlap
        weight = (depth / max(scale * overlap, 1)).clamp(0, 1)
        weight = torch.where(depth > 0, weight.clamp_min(1e-6), weight)
    else:
        weight = F.one_hot(depth.argmax(dim=0), len(starts)).T.float()
    weight = weight / weight.sum(dim=0, keepdim=True)
    return torch.stack([weight[i, scale * s : scale * (s + size)] for i, s in enumerate(starts)])


def upscale_tiled(
    fn: Callable[[Tensor], Tensor],
    lq: Tensor,
    *,
    scale: int,
    tile: int,
    tile_overlap: int,
    blend: bool = False,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Run ``fn`` on overlapping spatial tiles of a clip and assemble the result.

    Args:
        fn: maps ``(t, 3, th, tw)`` to ``(t', 3, scale*th, scale*tw)`` (t' may be a subset of
            the frames, e.g. a chunk's kept frames).
        lq: ``(t, 3, h, w)``.
        tile, tile_overlap: tile size and minimum overlap, in input pixels.
        blend: cross-fade the overlaps instead of cutting each at its middle.
        dtype: ``torch.uint8`` assembles 8-bit frames (``round(255 * clamp(x, 0, 1))``, a
            quarter of the memory; not with ``blend``), each tile converted as it comes.

    Returns:
        ``(t', 3, scale*h, scale*w)`` of ``dtype`` on the device of ``fn``'s output.
    """
    if dtype == torch.uint8 and blend:
        raise ValueError("expected blend=False for 8-bit assembly (crop: one tile per pixel)")
    _, _, h, w = lq.shape
    ys, xs = tile_starts(h, tile, tile_overlap), tile_starts(w, tile, tile_overlap)
    if len(ys) == 1 and len(xs) == 1:
        return to_dtype(fn(lq), dtype)
    th, tw = min(tile, h), min(tile, w)
    wy = _axis_weights(ys, th, h, scale, blend)  # (len(ys), scale*th)
    wx = _axis_weights(xs, tw, w, scale, blend)  # (len(xs), scale*tw)
    out = None
    for y, weight_y in zip(ys, wy, strict=True):
        for x, weight_x in zip(xs, wx, strict=True):
            sr = to_dtype(fn(lq[..., y : y + th, x : x + tw]), dtype)  # (t', 3, s*th, s*tw)
            if out is None:
                out = sr.new_zeros(sr.shape[0], 3, scale * h, scale * w)
            weight = (weight_y[:, None] * weight_x[None, :]).to(sr.device, dtype)  # (s*th, s*tw)
            out[..., scale * y : scale * (y + th), scale * x : scale * (x + tw)] += sr * weight
    return out


def to_dtype(sr: Tensor, dtype: torch.dtype) -> Tensor:
    """Model output → float32, or → 8-bit ``round(255 * clamp(sr, 0, 1))`` for ``torch.uint8``."""
    if dtype == torch.uint8:
        return sr.float().clamp_(0, 1).mul_(255).round_().to(torch.uint8)
    return sr.float()


def pad_to_min_size(lq: Tensor, min_size: int) -> tuple[Tensor, int, int]:
    """Replicate-pad ``(..., h, w)`` at the bottom/right to at least ``min_size`` on each side.

    Returns the padded tensor and the original ``h, w`` (crop the output back to ``s*h, s*w``).
    """
    h, w = lq.shape[-2:]
    ph, pw = max(0, min_size - h), max(0, min_size - w)
    if ph == 0 and pw == 0:
        return lq, h, w
    flat = lq.reshape(-1, *lq.shape[-3:])  # replicate padding wants (n, c, h, w)
    padded = F.pad(flat, (0, pw, 0, ph), mode="replicate")
    return padded.reshape(*lq.shape[:-2], h + ph, w + pw), h, w


def to_uint16(frame: Tensor) -> Tensor:
    """A frame in [0, 1] decoded from 8- or 16-bit samples → uint16 ``round(65535 * x)``: exact
    (an 8-bit v is ``v/255 = 257v/65535``), and :func:`from_uint16` gives back the same floats."""
    return frame.mul(65535).round_().to(torch.uint16)


def from_uint16(frames: Tensor) -> Tensor:
    """uint16 frames from :func:`to_uint16` (or uint8 from :func:`to_compact`) → float32 in
    [0, 1]; other dtypes → float32 as is."""
    if frames.dtype == torch.uint16:
        return frames.float().div_(65535)
    if frames.dtype == torch.uint8:
        return frames.float().div_(255)
    return frames.float()


def to_compact(frame: Tensor) -> Tensor:
    """A frame in [0, 1] → uint8 ``round(255 * x)`` where :func:`from_uint16` gives back exactly
    the same floats (frames decoded from 8-bit samples: a quarter of float32's memory), else
    :func:`to_uint16`."""
    small = frame.mul(255).round_().clamp_(0, 255).to(torch.uint8)
    return small if torch.equal(from_uint16(small), frame) else to_uint16(frame)


def stack_stored(frames: list[Tensor]) -> Tensor:
    """Stack frames held by :func:`to_compact` (uint8 ``v`` becomes uint16 ``257 v``, the same
    value, when the list mixes both) or by any other store."""
    if len({f.dtype for f in frames}) > 1:
        frames = [(f.int() * 257).to(torch.uint16) if f.dtype == torch.uint8 else f for f in frames]
    return torch.stack(frames)
