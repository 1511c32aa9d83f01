"""afvsr: video super-resolution with attention-based fusion of frame-rate groups."""

from afvsr.checkpoint import load_model, save_model

__version__ = "0.1.0"


def upscale_video(*args, **kwargs):
    """Upscale a video file or frame folder; see :func:`afvsr.video.upscale.upscale_video`."""
    from afvsr.video.upscale import upscale_video as _upscale_video

    return _upscale_video(*args, **kwargs)


__all__ = ["load_model", "save_model", "upscale_video", "__version__"]
