"""Where a run's numbers go: ``metrics.jsonl``, TensorBoard event files and the console log.

``metrics.jsonl`` has one JSON object per line, every one with ``"step"``:
``{"step": 100, "loss": 0.031, "lr": 0.0002, "lr/propagation": 0.0002, …, "it_s": 1.9}`` and
``{"step": 1000, "val/psnr_rgb": 27.1, "val/ssim_rgb": 0.80, "val/psnr_y": …, …}``.
On resume, lines past the checkpoint's step are dropped first, so the file reads as one run.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

from torch import Tensor

from afvsr.io_utils import atomic_path

LOGGER_NAME = "afvsr.train"


class TqdmHandler(logging.Handler):
    """Log records on stderr without breaking the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def setup_logging(*, verbose: bool, is_main: bool, log_file: Path | None) -> logging.Logger:
    """The ``afvsr.train`` logger: stderr (through tqdm) and ``train.log`` on rank 0."""
    logger = logging.getLogger(LOGGER_NAME)
    close_logging(logger)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    console = TqdmHandler()
    console.setFormatter(fmt)
    console.setLevel(
        logging.DEBUG if verbose and is_main else logging.INFO if is_main else logging.WARNING
    )
    logger.addHandler(console)
    if log_file is not None and is_main:
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    return logger


def close_logging(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def _jsonable(value: Any) -> Any:
    if isinstance(value, Tensor):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # strict JSON has no inf/nan
    return value


class MetricsLog:
    """Appends to ``metrics.jsonl`` and writes TensorBoard scalars and images (rank 0 only)."""

    def __init__(self, run_dir: Path, *, tensorboard: bool, start_step: int) -> None:
        self.path = run_dir / "metrics.jsonl"
        if start_step > 0 and self.path.is_file():
            self._truncate(start_step)
        elif start_step == 0 and self.path.is_file():
            self.path.unlink()
        self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(
                # Events after the checkpoint's step were written by the run that died: drop them.
                str(run_dir / "tensorboard"),
                purge_step=start_step + 1 if start_step > 0 else None,
            )

    def _truncate(self, step: int) -> None:
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:  # a line cut by a kill
                continue
        with atomic_path(self.path) as tmp:
            tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def scalars(self, step: int, values: dict[str, Any]) -> None:
        values = {k: _jsonable(v) for k, v in values.items()}
        self.file.write(json.dumps({"step": step, **values}) + "\n")
        self.file.flush()
        if self.writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.writer.add_scalar(key, value, step)

    def images(self, step: int, images: dict[str, Tensor]) -> None:
        if self.writer is not None:
            for name, image in images.items():
                self.writer.add_image(name, image.clamp(0, 1).cpu(), step, dataformats="CHW")

    def flush(self) -> None:
        self.file.flush()
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        self.file.close()
        if self.writer is not None:
            self.writer.close()
