"""Where a run's numbers go: ``metrics.jsonl``, TensorBoard event files and the console log.

``metrics.jsonl`` has one JSON object per line, every one with ``"step"``:
``{"step": 100, "loss": 0.031, "lr": 0.0002, "lr/propagation": 0.0002, …, "it_s": 1.9}`` and
``{"step": 1000, "val/psnr_rgb": 27.1, "val/ssim_rgb": 0.80, "val/psnr_y": …, …}``.
On resume, lines past the checkpoint's step are dropped first, so the file reads as one run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch import Tensor
from tqdm import tqdm

from afvsr.io_utils import atomic_path

LOGGER_NAME = "afvsr.train"


class TqdmHandler(logging.Handler):
    """Log records on stderr without breaking the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
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
            # here: TensorBoard is optional (log.tensorboard) and slow to import
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


class IntervalStats:
    """The numbers of one ``log.every`` interval: mean loss and task logs, steps per second and
    CPU seconds per step, counting training steps only (validation and saving are paused out).
    """

    def __init__(self, step: int) -> None:
        self._reset(step)

    def _reset(self, step: int) -> None:
        self.loss_sum, self.count, self.extras = 0.0, 0, {}
        self.start, self.start_step, self.cpu = time.perf_counter(), step, time.process_time()

    def add(self, loss: float, extras: dict[str, Any]) -> None:
        self.loss_sum, self.count = self.loss_sum + loss, self.count + 1
        for k, v in extras.items():
            self.extras[k] = self.extras.get(k, 0.0) + float(v)

    def close(self, step: int, lrs: dict[str, float]) -> dict[str, float]:
        """The interval's values for ``metrics.jsonl``; starts the next interval."""
        steps = max(step - self.start_step, 1)
        elapsed = time.perf_counter() - self.start
        values = {
            "loss": self.loss_sum / max(self.count, 1),
            "lr": max(lrs.values()),
            **{f"lr/{k}": v for k, v in lrs.items()},
            **{f"train/{k}": v / max(self.count, 1) for k, v in self.extras.items()},
            "it_s": (step - self.start_step) / max(elapsed, 1e-9),
            # CPU time of this process (all threads) per step: what the step costs, however
            # busy the machine is.
            "cpu_s_it": (time.process_time() - self.cpu) / steps,
        }
        self._reset(step)
        return values

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Time spent inside (validation, checkpoints) is left out of ``it_s`` and ``cpu_s_it``."""
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.start += time.perf_counter() - wall
            self.cpu += time.process_time() - cpu


def eta_text(seconds: float) -> str:
    """``HH:MM:SS`` below a day, else ``N.N days``."""
    if seconds < 86400:
        return time.strftime("%H:%M:%S", time.gmtime(seconds))
    return f"{seconds / 86400:.1f} days"
