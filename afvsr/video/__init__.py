"""Video input/output and chunked upscaling (issue 6): ``afvsr upscale`` and ``upscale_video``.

- :mod:`afvsr.video.reader`: streaming decode (PyAV) or frame folders -> ``(3, h, w)`` frames.
- :mod:`afvsr.video.writer`: streaming encode, remuxed audio/subtitles, atomic output.
- :mod:`afvsr.video.chunking`: overlapping temporal chunks (scene-cut aware) and spatial tiles.
- :mod:`afvsr.video.upscale`: :func:`upscale_video`, the pipeline joining them.
- :mod:`afvsr.video.cli`: the ``afvsr upscale`` command.
"""
