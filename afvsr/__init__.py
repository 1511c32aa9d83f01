"""afvsr: video super-resolution with attention-based fusion of frame-rate groups."""

from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str):
    # load_model/save_model on first use, so `afvsr --help` does not pay for importing torch.
    if name in ("load_model", "save_model"):
        from afvsr import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module 'afvsr' has no attribute {name!r}")


def upscale_video(*args, **kwargs):
    """Upscale a video file or frame folder; see :func:`afvsr.video.upscale.upscale_video`."""
    from afvsr.video.upscale import upscale_video as _upscale_video

    return _upscale_video(*args, **kwargs)


__all__ = ["load_model", "save_model", "upscale_video", "__version__"]
