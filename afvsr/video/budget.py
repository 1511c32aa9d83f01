"""The memory budget of ``afvsr upscale``: what a chunk costs, and the chunk and tiles that fit.

A run's peak memory is the process at start (Python, torch, the model), plus what one temporal
chunk holds while the model runs on it. That part is estimated from the model's structure
(:func:`memory_model`): per LR pixel, bytes held for every frame of the chunk (its context
included: the frame, flows, the recurrent features kept for the other direction), bytes for every
output frame (the float32 result and its 8-bit copy), and the largest working set of one frame
(the reconstruction's high-resolution features, the flow network's batch). The chunk length is
the largest that fits (up to :data:`MAX_CHUNK_CONTEXTS` times the overlap); when not even a chunk
as long as its overlap fits whole frames, the frames are cut into the largest square tiles that
fit. Splitting never changes the model or its numbers beyond the documented chunk/tile overlap
effect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

from afvsr.errors import AfvsrError
from afvsr.video.defaults import MIN_CHUNK

GIB = 1 << 30
MIB = 1 << 20
DEFAULT_BUDGET_CAP = 4 * GIB
# A chunk is at least MIN_CHUNK frames when the budget allows (afvsr.video.defaults)
MAX_CHUNK_CONTEXTS = 4  # ... and at most max(MIN_CHUNK, 4 x overlap): context then costs <= 50%
TILE_SIZES = (512, 448, 384, 320, 256, 224, 192, 160, 128, 96, 64)  # candidates
SPYNET_MAX_PIXELS = 1 << 19  # SPyNet runs at most this many padded pixels per call
SPYNET_BYTES = 520  # per pixel of a SPyNet call: pyramids and its 8-32-64-32-16 channel convs
RECON_MAX_PIXELS = 1 << 20  # HR pixels per reconstruction call (models.common.reconstruct_frames)
# Bytes per output pixel libx264 holds, by look-ahead (measured at 2560x1088, crf 18, 2 cores:
# 481 MiB with its default 40 frames, 229 MiB with 10, 172 MiB with none; with none at
# 7680x4320, 16 frames, 1 or 3 threads: 58, still growing). A run whose encoder would take over
# a quarter of the budget gets the first shorter look-ahead that does not, or none (the same crf
# quality target; a somewhat larger file).
ENCODER_BYTES = 185
ENCODER_LEVELS = ((None, ENCODER_BYTES), ({"rc-lookahead": "10"}, 90), ({"rc-lookahead": "0"}, 65))
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": MIB, "g": GIB, "t": 1 << 40}


def parse_size(text: str) -> int:
    """``"3G"``, ``"512M"``, ``"2.5GiB"``, ``"1500MB"`` or plain bytes → bytes (powers of 1024)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", str(text).lower())
    if not m or float(m.group(1)) <= 0:
        raise AfvsrError(f"expected a memory size such as 3G, 512M or 2.5GiB, got {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def format_size(n: float) -> str:
    """Bytes → ``"3.0 GiB"`` or ``"512 MiB"``."""
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / MIB:.0f} MiB"


def default_budget() -> int:
    """The smaller of 4 GiB and half the memory available now (psutil)."""
    import psutil

    return int(min(DEFAULT_BUDGET_CAP, psutil.virtual_memory().available // 2))


def memory_budget(max_memory: int | str | None) -> int:
    """``--max-memory``: bytes, a size string (:func:`parse_size`), or None for the default."""
    if max_memory is None:
        return default_budget()
    size = parse_size(max_memory) if isinstance(max_memory, str) else int(max_memory)
    if size <= 0:
        raise AfvsrError(f"expected a positive --max-memory, got {max_memory!r}")
    return size


def stored_sample_bytes(pix_fmt: str) -> int:
    """Bytes per sample a decoded frame of ``pix_fmt`` is held in while its chunks run: 1 for
    8-bit sources (uint8, :func:`~afvsr.video.chunking.to_compact`), else 2 (uint16)."""
    try:
        import av

        bits = max(c.bits for c in av.VideoFormat(pix_fmt).components)
    except (ValueError, TypeError, ImportError):  # unknown format name: assume the larger
        return 2
    return 1 if bits <= 8 else 2


def current_rss() -> int:
    """Resident memory of this process now, in bytes."""
    import psutil

    return int(psutil.Process().memory_info().rss)


@dataclass(frozen=True)
class MemoryModel:
    """A model's memory per LR pixel (bytes): ``per_frame`` for each frame of a chunk (context
    included), ``per_output`` for each output frame, ``per_pixel`` for one frame's working set;
    ``hr_per_pixel`` per HR pixel of a reconstruction batch, ``flow`` whether it runs SPyNet."""

    per_frame: float
    per_output: float
    per_pixel: float
    hr_per_pixel: float = 0.0
    flow: bool = False


def memory_model(net: nn.Module) -> MemoryModel:
    """The memory model of a model, from its structure (class, channels, rates, scale)."""
    from afvsr.models import AFVSR, BasicVSR, Bicubic, IconVSR

    s2 = net.scale**2
    out = 3 * s2 * 4 + 3 * s2  # the float32 output and its 8-bit copy
    flows = 2 * 2 * 4 + 2 * 3 * 4 * 2  # both directions' flows; the frame pairs fed to SPyNet
    if isinstance(net, Bicubic):
        return MemoryModel(per_frame=0, per_output=out, per_pixel=3 * s2 * 4)
    c = getattr(getattr(net, "propagation", None), "mid_channels", 64)
    hr = 2 * c * 4  # reconstruction: two feature maps of c channels at HR size
    if isinstance(net, AFVSR):
        rates = len(set(net.rates))
        groups, heads = len(net.rates), net.num_heads
        attention = 6 * groups * heads * c * 4  # projections, scores, weights, dense blocks
        return MemoryModel(
            per_frame=rates * (c * 4 + flows),
            per_output=out,
            per_pixel=max(attention, hr * s2),  # one frame at a time: attention, then HR
            flow=True,
        )
    if isinstance(net, IconVSR):
        refill = (2 * net.temporal_padding + 1) * 3 * 4 + 12 * c * 4  # per keyframe
        return MemoryModel(
            per_frame=3 * c * 4 + flows + refill / net.keyframe_stride,
            per_output=out,
            per_pixel=12 * c * 4 * (2 * net.temporal_padding + 1),  # the extractor's window
            hr_per_pixel=hr,
            flow=True,
        )
    if isinstance(net, BasicVSR):
        return MemoryModel(
            per_frame=c * 4 + flows, per_output=out, per_pixel=0, hr_per_pixel=hr, flow=True
        )
    # Any other module: assume a BasicVSR-like model of 64 channels, whole frames at HR size.
    return MemoryModel(
        per_frame=2 * 64 * 4 + flows, per_output=out, per_pixel=hr * s2, hr_per_pixel=hr, flow=True
    )


@dataclass(frozen=True)
class Plan:
    """How a run is split: ``chunk`` output frames per chunk, ``tile`` (None: whole frames),
    and the estimated peak (``estimate``, bytes) against ``budget``."""

    chunk: int
    tile: int | None
    estimate: int
    budget: int
    encoder_options: dict | None = None


def chunk_memory(
    mm: MemoryModel,
    *,
    width: int,
    height: int,
    scale: int,
    chunk: int,
    overlap: int,
    tile: int | None,
    tile_overlap: int,
    encoder_bytes: int = ENCODER_BYTES,
    sample_bytes: int = 2,
) -> int:
    """Estimated bytes one chunk needs beyond the process at start (frames ``width x height``,
    held as ``sample_bytes`` per sample until their chunks are done: 1 for 8-bit sources)."""
    full = width * height
    th, tw = (height, width) if tile is None else (min(tile, height), min(tile, width))
    a = th * tw  # pixels the model sees per call
    longest = chunk + chunk // 4  # a boundary may move to a scene cut up to chunk // 4 later
    frames = longest + 2 * overlap
    # The decoded frames: the chunk's stack (the frames kept for the next chunk are views of it)
    # and the frames read ahead; twice that while the next chunk is stacked from the last one.
    stream = 3 * sample_bytes * full * (frames + chunk // 4)
    held = a * ((mm.per_frame + 12) * frames + mm.per_output * longest)
    # Working sets that come and go one after the other (flows, then features, then
    # reconstruction): the largest counts, not their sum.
    padded = (th + 31) // 32 * 32 * ((tw + 31) // 32 * 32)
    spynet = (
        SPYNET_BYTES * max(min(2 * frames * padded, SPYNET_MAX_PIXELS), padded) if mm.flow else 0
    )
    recon = mm.hr_per_pixel * max(scale * scale * a, RECON_MAX_PIXELS)
    transient = max(spynet, recon, a * mm.per_pixel)
    assembled = 3 * scale * scale * full * longest  # the 8-bit output frames of the chunk
    encoder = encoder_bytes * scale * scale * full
    return int(encoder + max(stream + held + transient + assembled, 2 * stream))


def plan_chunks(
    mm: MemoryModel,
    *,
    width: int,
    height: int,
    scale: int,
    overlap: int,
    budget: int,
    base: int,
    chunk: int | None = None,
    tile: int | None = None,
    tile_overlap: int = 16,
    sample_bytes: int = 2,
) -> Plan:
    """The chunk (and tiles, if needed) that fit ``budget`` bytes, ``base`` bytes being in use.

    Among whole frames and the tile sizes of :data:`TILE_SIZES`, the choice that fits and costs
    the least work: frames computed per output frame, ``(chunk + 2*overlap) / chunk`` times the
    tiles' pixels over the frame's. The chunk is at most ``max(MIN_CHUNK, MAX_CHUNK_CONTEXTS *
    overlap)``. ``chunk``/``tile`` given: kept (the other is chosen); an AfvsrError saying what
    would fit if they cannot. ``sample_bytes``: as :func:`chunk_memory` (2 unless the source is
    known to be 8-bit, :func:`stored_sample_bytes`).
    """
    size = dict(width=width, height=height, scale=scale, overlap=overlap, tile_overlap=tile_overlap,
                sample_bytes=sample_bytes)  # fmt: skip
    out_pixels = scale * scale * width * height
    encoder_options, enc = next(
        (level for level in ENCODER_LEVELS if level[1] * out_pixels <= budget // 4),
        ENCODER_LEVELS[-1],
    )
    free = budget - base

    def cost(c: int, t: int | None) -> int:
        return chunk_memory(mm, chunk=c, tile=t, encoder_bytes=enc, **size)

    def longest_chunk(t: int | None) -> int:  # 0 if not even one frame fits
        lo, hi = 0, max(MIN_CHUNK, MAX_CHUNK_CONTEXTS * overlap) if chunk is None else chunk
        while lo < hi:  # the largest c in [0, hi] with cost(c) <= free (cost grows with c)
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if cost(mid, t) <= free else (lo, mid - 1)
        return lo

    if tile is not None:
        tiles = [tile]
    else:
        tiles = [None] + [t for t in TILE_SIZES if t < max(width, height) and t > 2 * tile_overlap]
    best = None
    for t in tiles:
        c = longest_chunk(t)
        if c < 1 or (chunk is not None and c < chunk):
            continue
        work = (c + 2 * overlap) / c * tile_work(width, height, t, tile_overlap)
        if best is None or work < best[0]:
            best = (work, c, t)
    if best is None:
        raise AfvsrError(what_fits(mm, size, budget, base, chunk, tile))
    _, c, t = best
    return Plan(chunk=c, tile=t, estimate=base + cost(c, t), budget=budget,
                encoder_options=encoder_options)  # fmt: skip


def tile_work(width: int, height: int, tile: int | None, tile_overlap: int) -> float:
    """Pixels the model computes over the frame's pixels (1 for whole frames)."""
    from afvsr.video.chunking import tile_starts

    if tile is None:
        return 1.0
    th, tw = min(tile, height), min(tile, width)
    ny = len(tile_starts(height, tile, tile_overlap))
    nx = len(tile_starts(width, tile, tile_overlap))
    return ny * th * nx * tw / (height * width)


def what_fits(mm: MemoryModel, size: dict, budget: int, base: int, chunk, tile) -> str:
    """The error for a budget that the asked chunk/tile (or anything) cannot fit."""
    asked = (
        " ".join(f"--{k} {v}" for k, v in (("chunk", chunk), ("tile", tile)) if v is not None)
        or "a chunk of 1 frame in the smallest tile"
    )
    need = base + chunk_memory(
        mm,
        chunk=chunk or 1,
        tile=tile or TILE_SIZES[-1],
        encoder_bytes=ENCODER_LEVELS[-1][1],
        **size,
    )
    hint = ""
    if chunk is not None or tile is not None:
        try:
            other = plan_chunks(mm, budget=budget, base=base, **size)
            hint = f"; --chunk {other.chunk}" + (f" --tile {other.tile}" if other.tile else "")
            hint += " fits"
        except AfvsrError:
            pass
    return (
        f"{asked} needs about {format_size(need)}, over the --max-memory budget of "
        f"{format_size(budget)} ({format_size(base)} already in use){hint or '; raise --max-memory'}"
    )
