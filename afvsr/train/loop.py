"""The training loop: iteration-based, exactly resumable, single process or torchrun/DDP.

One optimizer step (``step`` counts completed steps, 0-based inside the loop):

1. freezing: each parameter group trains from its ``trainable_from`` step on (``requires_grad``
   is set per module; the DDP wrapper is rebuilt when the set of trainable parameters changes);
2. learning rates: ``schedule(step) × base lr`` of every group (cosine over ``iterations``
   after an optional linear warm-up, stepped every iteration);
3. ``accumulate`` micro-batches: forward + loss under autocast (bf16/fp16 on request), backward
   of ``loss / accumulate`` (DDP syncs gradients on the last one only);
4. the loss, averaged over micro-batches and processes, must be finite — else the run stops with
   a clear message and writes nothing, so the last good checkpoint stays as it was;
5. gradient clipping, ``Adam.step`` (through the GradScaler for fp16), EMA update.

After step ``s`` completes: the loss line every ``log.every`` steps, validation every
``val.every`` steps (rank 0; the best checkpoint by the task's ``best_metric``), a checkpoint
every ``log.checkpoint_every`` steps and at the end. A checkpoint holds everything that decides
what happens next (weights, Adam moments, EMA, step, RNG states, GradScaler, the sampler
position as ``step × accumulate`` micro-batches, the best metric, the resolved config), so a run
killed at any moment and resumed from its last checkpoint ends bit-identical on CPU to one
never interrupted (see ``afvsr.train.sampler`` for why the data stream is the same).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from afvsr.checkpoint import save_model
from afvsr.errors import AfvsrError
from afvsr.inference import SLOW_BF16, cpu_has_native_bf16, resolve_precision
from afvsr.io_utils import atomic_path
from afvsr.models.common import channels_last_weights
from afvsr.schema import ConfigError
from afvsr.train import distributed as D
from afvsr.train.config import config_diff, config_to_toml, saved_config
from afvsr.train.logbook import (
    IntervalStats,
    MetricsLog,
    close_logging,
    eta_text,
    setup_logging,
)
from afvsr.train.sampler import SeededSamples, StepBatchSampler, derive_seed, worker_init_fn
from afvsr.train.schedule import ema_decay_at, lr_at
from afvsr.train.state import (
    CheckpointError,
    check_meta,
    check_tensors,
    find_checkpoints,
    read_checkpoint_header,
    read_checkpoint_tensors,
    readable_earlier_checkpoint,
    remove_stale_checkpoint_temps,
    restore_checkpoint,
    save_checkpoint,
)
from afvsr.train.task import Task, check_groups
from afvsr.train.tasks import TASKS


def training_device(name: str, local_rank: int) -> torch.device:
    """The ``[run] device`` of this process (``"auto"``: CUDA if present; ``"cuda"`` under
    torchrun: the process's local GPU)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise AfvsrError(f'[run] device = {name!r} but CUDA is not available; use "cpu"')
        if device.index is None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class _TaskForward(nn.Module):
    """What DDP wraps: ``forward(batch)`` runs the task's loss on the bare model.

    Going through one ``forward`` lets a task call any method of its model (``forward_groups``,
    SPyNet's two-argument call) while DDP still sees the forward pass and syncs gradients.
    """

    def __init__(self, task: Task, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.task = task

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        return self.task.loss(self.model, batch)


class Trainer:
    """One training run; ``Trainer(cfg, …).run()`` (see the module docstring)."""

    def __init__(
        self,
        cfg: dict[str, Any],
        *,
        source: str,
        resume: str | bool | None = None,
        verbose: bool = False,
    ) -> None:
        self.cfg, self.source, self.verbose = cfg, source, verbose
        self.tcfg = cfg["train"]
        self.started = time.time()  # temporary files older than this are from killed runs
        self._notes: list[str] = []  # warnings found before the log exists
        run = cfg["run"]
        self._check_settings()
        self.dist = D.init_distributed(
            "cuda" if run["device"] != "cpu" and torch.cuda.is_available() else "cpu"
        )
        self.device = training_device(run["device"], self.dist.local_rank)
        if run["threads"]:
            torch.set_num_threads(run["threads"])
        self._set_determinism(run["deterministic"])
        self.run_dir = Path(run["out_dir"]) / run["name"]
        self.ckpt_dir = self.run_dir / "checkpoints"
        try:  # everything that can fail is checked before the run folder exists
            self._build()
            self.resume_path = self._resume(resume)
            self.dataset = self.task.build_train_dataset()
        except BaseException:
            torch.use_deterministic_algorithms(self._prev_deterministic)
            raise
        self._open_run_folder()
        self.trainable: tuple[bool, ...] | None = None
        self.wrapper: nn.Module = _TaskForward(self.task, self.model)
        self.signal_received = 0  # the signal's number, set by the handler at any time
        self.stop_requested = False  # a stop agreed on by all processes at a step's end

    # ------------------------------------------------------------------ setup helpers

    def _check_settings(self) -> None:
        run, tcfg, world = self.cfg["run"], self.tcfg, int(os.environ.get("WORLD_SIZE", "1"))
        if tcfg["batch_size"] % world:
            raise AfvsrError(
                f"{self.source}: [train] batch_size: the global batch {tcfg['batch_size']} must "
                f"be divisible by the {world} processes"
            )
        if tcfg["precision"] == "fp16" and not (
            run["device"] != "cpu" and torch.cuda.is_available()
        ):
            raise AfvsrError(
                f'{self.source}: [train] precision: fp16 needs CUDA; use "fp32" or "bf16" on '
                "the CPU"
            )

    def _resolve_precision(self) -> str:
        """``[train] precision`` with "auto" resolved for this device; a note where bf16 is slow."""
        asked = self.tcfg["precision"]
        precision = resolve_precision(asked, self.device)
        if self.device.type == "cpu" and precision == "bf16" and not cpu_has_native_bf16():
            self._notes.append(
                f'[train] precision bf16: {SLOW_BF16} (precision = "auto" picks fp32)'
            )
        return precision

    def _build(self) -> None:
        """Task, model, parameter groups, optimizer, EMA and GradScaler, at step 0."""
        tcfg = self.tcfg
        seed_everything(self.cfg["run"]["seed"])
        self.task: Task = TASKS[self.cfg["run"]["task"]](self.cfg)
        try:
            self.model = self.task.build_model().to(self.device)
            if tcfg["channels_last"]:  # oneDNN/cuDNN's fast conv layout; the model is the same
                channels_last_weights(self.model)
        except ConfigError as exc:
            raise ConfigError(f"{self.source}: {exc}") from None
        self.model.train()
        self.groups = self.task.param_groups(self.model)
        check_groups(self.model, self.groups)
        self.optimizer = torch.optim.Adam(
            [
                {"params": g.parameters(), "lr": g.lr, "base_lr": g.lr, "name": g.name}
                for g in self.groups
                if g.trainable_from is not None
            ],
            lr=tcfg["lr"],
            betas=tuple(tcfg["betas"]),
            weight_decay=tcfg["weight_decay"],
        )
        self.ema_model: nn.Module | None = None
        if tcfg["ema_decay"] > 0:
            self.ema_model = copy.deepcopy(self.model).requires_grad_(False).eval()
        self.precision = self._resolve_precision()
        self.autocast_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[
            self.precision
        ]
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        self.step = 0
        self._config_diff_on_resume: list[str] = []
        self.best: dict[str, Any] = {
            "metric": self.task.best_metric,
            "mode": self.task.best_mode,
            "value": None,
            "step": None,
        }

    def _set_determinism(self, deterministic: bool) -> None:
        self._prev_deterministic = torch.are_deterministic_algorithms_enabled()
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            # grid_sample's CUDA backward has no deterministic kernel: warn there, don't fail.
            torch.use_deterministic_algorithms(True, warn_only=self.device.type == "cuda")
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        else:
            torch.backends.cudnn.benchmark = True

    def _open_run_folder(self) -> None:
        """Create the run folder, remove temporary checkpoints of killed runs, start the log."""
        removed: list[Path] = []
        if self.dist.is_main:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            removed = remove_stale_checkpoint_temps(self.ckpt_dir, older_than=self.started)
        D.barrier(self.dist)
        self.log = setup_logging(
            verbose=self.verbose, is_main=self.dist.is_main, log_file=self.run_dir / "train.log"
        )
        for note in self._notes:
            self.log.warning("%s", note)
        if removed:
            self.log.info(
                "removed %d temporary file(s) left by an earlier, killed run: %s",
                len(removed),
                ", ".join(p.name for p in removed),
            )

    # ------------------------------------------------------------------ resuming

    def _resume(self, resume: str | bool | None) -> Path | None:
        """Load the checkpoint to continue from; returns its path (None: a new run).

        ``--resume`` without a path falls back to an earlier step checkpoint when the last one
        is corrupt, saying so; ``--resume CKPT`` of a corrupt file names the earlier one.
        """
        existing = [p for _, p in find_checkpoints(self.ckpt_dir)]
        if isinstance(resume, str):
            path = Path(resume)
            try:
                self._load(path)
            except CheckpointError as exc:
                earlier = readable_earlier_checkpoint(path)
                hint = f"; resume from the earlier checkpoint {earlier}" if earlier else ""
                raise CheckpointError(f"{exc}{hint}") from None
            return path
        if not resume:
            if existing:
                raise AfvsrError(
                    f"run folder {self.run_dir} already has checkpoints (last: "
                    f"{existing[-1].name}); pass --resume to continue it, or set another "
                    "[run] name"
                )
            return None
        errors = []
        for path in reversed(existing):
            try:
                self._load(path)
            except CheckpointError as exc:
                errors.append(str(exc))
                continue
            if errors:
                self._notes.append(
                    f"{' / '.join(errors)}; resuming from the earlier checkpoint {path} instead"
                )
            return path
        if errors:
            raise CheckpointError(f"no readable checkpoint in {self.ckpt_dir} ({errors[0]})")
        return None

    def _load(self, path: Path) -> None:
        """Restore the whole training state from ``path``, after checking every field and
        tensor shape (from the header: nothing of a bad file is allocated or loaded)."""
        meta, shapes = read_checkpoint_header(path)
        check_meta(meta, str(path))
        diff = config_diff(saved_config(meta["config"], f"{path} (its config)"), self.cfg)
        model_diff = [k for k in diff if k.startswith("model.")]
        if model_diff:
            raise AfvsrError(
                f"{path}: the checkpoint's model differs from the config's ({', '.join(model_diff)})"
            )
        check_tensors(shapes, meta, model=self.model, ema_model=self.ema_model, source=str(path))
        tensors = read_checkpoint_tensors(path)
        restore_checkpoint(
            meta,
            tensors,
            model=self.model,
            optimizer=self.optimizer,
            ema_model=self.ema_model,
            source=str(path),
        )
        self._config_diff_on_resume = diff
        self.step = int(meta["step"])
        self.best = meta["best"]
        if meta.get("scaler"):
            try:
                self.scaler.load_state_dict(meta["scaler"])
            except (KeyError, TypeError, ValueError, RuntimeError) as exc:
                raise CheckpointError(f"{path}: field 'scaler': {exc}") from None

    def _loader(self) -> Iterator[dict[str, Tensor]]:
        dataset = self.dataset
        tcfg, seed = self.tcfg, self.cfg["run"]["seed"]
        start_batch = self.step * tcfg["accumulate"]
        sampler = StepBatchSampler(
            len(dataset),
            seed=seed,
            global_batch=tcfg["batch_size"],
            world_size=self.dist.world_size,
            rank=self.dist.rank,
            start_batch=start_batch,
        )
        workers = self.cfg["run"]["num_workers"]
        loader = DataLoader(
            SeededSamples(dataset),
            batch_sampler=sampler,
            num_workers=workers,
            worker_init_fn=worker_init_fn if workers else None,
            generator=torch.Generator().manual_seed(derive_seed(seed, 3, start_batch)),
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )
        return iter(loader)

    # ------------------------------------------------------------------ per-step parts

    def _update_trainable(self) -> None:
        flags = tuple(g.trainable_at(self.step) for g in self.groups)
        if flags == self.trainable:
            return
        for group, flag in zip(self.groups, flags, strict=True):
            for p in group.parameters():
                p.requires_grad_(flag)
        if self.trainable is not None:
            self.log.info(
                "step %d: trainable groups now %s",
                self.step,
                ", ".join(g.name for g, f in zip(self.groups, flags, strict=True) if f) or "none",
            )
        self.trainable = flags
        self._describe_groups()
        if not any(flags):
            raise AfvsrError(f"{self.source}: no parameter group is trainable at step {self.step}")
        inner = _TaskForward(self.task, self.model)
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.wrapper = DistributedDataParallel(inner, device_ids=ids)
        else:
            self.wrapper = inner

    def _describe_groups(self) -> None:
        """-v: each group's learning rate and state, and every trainable layer."""
        if not self.log.isEnabledFor(10):  # logging.DEBUG
            return
        names = {id(m): n for n, m in self.model.named_modules()}
        for group in self.groups:
            count = sum(p.numel() for p in group.parameters())
            if group.trainable_at(self.step):
                state = "trainable"
            elif group.trainable_from is None:
                state = "frozen"
            else:
                state = f"frozen until step {group.trainable_from}"
            self.log.debug(
                "group %-15s base lr %.3g  lr now %.3g  %s  %d parameters",
                group.name,
                group.lr,
                lr_at(self.step, group.lr, self.tcfg),
                state,
                count,
            )
            if not group.trainable_at(self.step):
                continue
            for module in group.modules:
                for sub in module.modules():
                    direct = sum(p.numel() for p in sub.parameters(recurse=False))
                    if direct:
                        self.log.debug(
                            "    %-55s %-28s %9d",
                            names.get(id(sub), "?"),
                            type(sub).__name__,
                            direct,
                        )

    def _set_lrs(self) -> dict[str, float]:
        lrs = {}
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.step, group["base_lr"], self.tcfg)
            lrs[group["name"]] = group["lr"]
        return lrs

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {
            k: v.to(self.device, non_blocking=True) if isinstance(v, Tensor) else v
            for k, v in batch.items()
        }

    def _train_step(self, batches: Iterator[dict[str, Tensor]]) -> tuple[Tensor, dict[str, Tensor]]:
        """One optimizer step; returns the loss (mean over micro-batches and processes) and
        the task's extra logs (this process's, averaged over micro-batches)."""
        accumulate = self.tcfg["accumulate"]
        self.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=self.device)
        extras: dict[str, Tensor] = {}
        for micro in range(accumulate):
            batch = self._to_device(next(batches))
            last = micro == accumulate - 1
            sync = (
                self.wrapper.no_sync()
                if isinstance(self.wrapper, DistributedDataParallel) and not last
                else contextlib.nullcontext()
            )
            with sync:
                with self._autocast():
                    loss, logs = self.wrapper(batch)
                self.scaler.scale(loss / accumulate).backward()
            total = total + loss.detach().float()
            for k, v in logs.items():
                extras[k] = extras.get(k, 0) + v.detach().float() / accumulate
        # One all-reduce per step carries the loss and any stop request (SIGINT/SIGTERM on any
        # process), so every process takes the same decision at the same step.
        flag = torch.tensor(float(self.signal_received > 0), device=self.device)
        packed = torch.stack([total / accumulate, flag])
        packed = D.all_reduce_mean(packed, self.dist)
        loss_mean = packed[0]
        self.stop_requested = bool(packed[1] > 0)
        if not torch.isfinite(loss_mean):
            last_ckpt = find_checkpoints(self.ckpt_dir)
            where = f"; the last good checkpoint is {last_ckpt[-1][1]}" if last_ckpt else ""
            raise AfvsrError(
                f"the training loss is {loss_mean.item()} at step {self.step + 1}; stopped "
                f'without saving{where} (try a lower [train] lr, grad_clip or precision = "fp32")'
            )
        if self.tcfg["grad_clip"] > 0:
            self.scaler.unscale_(self.optimizer)
            params = [
                p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None
            ]
            torch.nn.utils.clip_grad_norm_(params, self.tcfg["grad_clip"])
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema_model is not None:
            self._update_ema()
        return loss_mean, extras

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = ema_decay_at(self.step + 1, self.tcfg["ema_decay"], warmup=self.tcfg["ema_warmup"])
        for ema, live in zip(self.ema_model.parameters(), self.model.parameters(), strict=True):
            ema.lerp_(live.detach(), 1.0 - decay)
        for ema, live in zip(self.ema_model.buffers(), self.model.buffers(), strict=True):
            ema.copy_(live)

    # ------------------------------------------------------------------ validation, saving

    def _eval_model(self) -> nn.Module:
        return self.ema_model if self.ema_model is not None else self.model

    def _validate(self, metrics_log: MetricsLog | None) -> None:
        if self.dist.is_main:
            model = self._eval_model()
            was_training = model.training
            model.eval()
            start = time.perf_counter()
            try:
                with torch.inference_mode():
                    result = self.task.validate(model, self.device)
            finally:
                model.train(was_training)
            if self.task.best_metric not in result.metrics:
                raise AfvsrError(
                    f"task {self.task.name!r}: validation returned {sorted(result.metrics)}, "
                    f"without its best metric {self.task.best_metric!r}"
                )
            values = {f"val/{k}": v for k, v in result.metrics.items()}
            self.log.info(
                "step %d validation (%.1f s): %s",
                self.step,
                time.perf_counter() - start,
                "  ".join(f"{k}={v:.4f}" for k, v in result.metrics.items()),
            )
            if metrics_log is not None:
                metrics_log.scalars(self.step, values)
                metrics_log.images(self.step, {f"val/{k}": v for k, v in result.images.items()})
            value = float(result.metrics[self.task.best_metric])
            best = self.best["value"]
            better = best is None or (value > best if self.best["mode"] == "max" else value < best)
            if better and math.isfinite(value):
                self.best.update(value=value, step=self.step)
                self._save(self.ckpt_dir / "best.safetensors")
                self._export(self.run_dir / "model_best.safetensors")
                self.log.info(
                    "step %d: new best %s = %.4f", self.step, self.task.best_metric, value
                )
        D.barrier(self.dist)

    def _save(self, path: Path) -> None:
        meta = {
            "step": self.step,
            "config": self.cfg,
            "scheduler": {
                "name": self.tcfg["scheduler"],
                "warmup_iters": self.tcfg["warmup_iters"],
                "last_step": self.step,
            },
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "sampler": {
                "next_micro_batch": self.step * self.tcfg["accumulate"],
                "global_batch": self.tcfg["batch_size"],
                "seed": self.cfg["run"]["seed"],
            },
            "best": self.best,
            "world_size": self.dist.world_size,
        }
        save_checkpoint(
            path, model=self.model, optimizer=self.optimizer, ema_model=self.ema_model, meta=meta
        )

    def _save_step_checkpoint(self) -> None:
        if self.dist.is_main:
            path = self.ckpt_dir / f"step_{self.step:08d}.safetensors"
            self._save(path)
            keep = self.cfg["log"]["keep_last"]
            old = find_checkpoints(self.ckpt_dir)
            for _, stale in old[: max(0, len(old) - max(keep, 1))]:
                stale.unlink(missing_ok=True)
            self.log.debug("saved %s", path)
        D.barrier(self.dist)

    def _export(self, path: Path) -> None:
        save_model(
            self._eval_model(),
            path,
            extra={"train_step": str(self.step), "train_run": self.cfg["run"]["name"]},
        )

    # ------------------------------------------------------------------ the run

    @contextlib.contextmanager
    def _stop_signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM: finish the current step, save a checkpoint, exit (a second one kills)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self.signal_received:
                signal.signal(signum, signal.SIG_DFL)
                raise KeyboardInterrupt
            self.signal_received = signum
            self.log.warning("signal %d: stopping after this step (again to abort)", signum)

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def run(self) -> int:
        """Train to ``[train] iterations``; 0 when done, 128 + N after a clean stop on signal N
        (130 for SIGINT, 143 for SIGTERM), so ``afvsr train … && afvsr eval …`` stops there."""
        metrics_log = self._start()
        bar = tqdm(
            total=self.tcfg["iterations"],
            initial=self.step,
            unit="it",
            file=sys.stderr,
            dynamic_ncols=True,
            disable=not (self.dist.is_main and sys.stderr.isatty()),
        )
        try:
            with self._stop_signals():
                if self._loop(bar, metrics_log):
                    if self.dist.is_main:  # the weights so far, usable without resuming
                        self._export(self.run_dir / "model_last.safetensors")
                    self.log.warning(
                        "stopped at step %d (weights so far: model_last.safetensors); "
                        "continue with --resume",
                        self.step,
                    )
                    return 128 + (self.signal_received or signal.SIGTERM)
            if self.dist.is_main:
                final = self.run_dir / "model_final.safetensors"
                self._export(final)
                self.log.info("done: %d steps; weights in %s", self.step, final)
            D.barrier(self.dist)
            return 0
        finally:
            bar.close()
            if metrics_log is not None:
                metrics_log.close()
            self.close()

    def _start(self) -> MetricsLog | None:
        """config.toml and the metrics log (rank 0), and the run's first log lines."""
        cfg, metrics_log = self.cfg, None
        if self.dist.is_main:
            with atomic_path(self.run_dir / "config.toml") as tmp:
                tmp.write_text(config_to_toml(cfg), encoding="utf-8")
            metrics_log = MetricsLog(
                self.run_dir, tensorboard=cfg["log"]["tensorboard"], start_step=self.step
            )
        if self.resume_path is not None:
            self.log.info("resumed from %s at step %d", self.resume_path, self.step)
            if self._config_diff_on_resume:
                self.log.warning(
                    "config differs from the checkpoint's in: %s (using the new values)",
                    ", ".join(self._config_diff_on_resume),
                )
        else:
            self.log.info("new run in %s", self.run_dir)
        self.log.info(
            "task %s, model %s (%d parameters), %d process(es) on %s, global batch %d x %d, %s",
            self.task.name,
            cfg["model"]["name"],
            sum(p.numel() for p in self.model.parameters()),
            self.dist.world_size,
            self.device,
            self.tcfg["batch_size"],
            self.tcfg["accumulate"],
            self.precision,
        )
        return metrics_log

    def _loop(self, bar, metrics_log: MetricsLog | None) -> bool:
        """The optimizer steps up to ``iterations``; True when stopped early by a signal."""
        total, every = self.tcfg["iterations"], self.cfg["log"]["every"]
        batches = self._loader() if self.step < total else iter(())
        stats = IntervalStats(self.step)
        while self.step < total:
            self._update_trainable()
            lrs = self._set_lrs()
            loss, extras = self._train_step(batches)
            self.step += 1
            loss_value = loss.item()
            stats.add(loss_value, {k: v.item() for k, v in extras.items()})
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4g}", lr=f"{max(lrs.values()):.3g}", refresh=False)
            if self.step % every == 0 or self.step == total:
                self._log_interval(stats.close(self.step, lrs), lrs, metrics_log, bar.disable)
            with stats.paused():  # it/s and cpu_s_it count training steps only
                self._after_step(metrics_log)
            if self.stop_requested:
                return True
        return False

    def _log_interval(
        self,
        values: dict[str, float],
        lrs: dict[str, float],
        metrics_log: MetricsLog | None,
        to_log: bool,
    ) -> None:
        """One ``metrics.jsonl`` line; a log line too where no progress bar shows."""
        if metrics_log is not None:
            metrics_log.scalars(self.step, values)
        total = self.tcfg["iterations"]
        if to_log:
            self.log.info(
                "step %d/%d  loss %.5g  lr %.3g  %.3f it/s  ETA %s",
                self.step,
                total,
                values["loss"],
                values["lr"],
                values["it_s"],
                eta_text((total - self.step) / max(values["it_s"], 1e-9)),
            )
        self.log.debug(
            "step %d lrs %s", self.step, " ".join(f"{k}={v:.3g}" for k, v in lrs.items())
        )

    def _after_step(self, metrics_log: MetricsLog | None) -> None:
        """Validation and checkpoints due after the step just completed."""
        total, every_val = self.tcfg["iterations"], self.cfg["val"]["every"]
        if every_val and (self.step % every_val == 0 or self.step == total):
            self._validate(metrics_log)
        every_ckpt = self.cfg["log"]["checkpoint_every"]
        checkpoint_due = every_ckpt and self.step % every_ckpt == 0
        if checkpoint_due or self.step == total or self.stop_requested:
            self._save_step_checkpoint()

    def close(self) -> None:
        """Release the log files and restore the process-wide determinism setting."""
        close_logging(self.log)
        torch.use_deterministic_algorithms(self._prev_deterministic)


def train(
    cfg: dict[str, Any],
    *,
    source: str,
    resume: str | bool | None = None,
    verbose: bool = False,
) -> int:
    """Run (or resume) training for the resolved config ``cfg``; returns the exit code."""
    try:
        return Trainer(cfg, source=source, resume=resume, verbose=verbose).run()
    finally:
        D.cleanup()
