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
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from afvsr.errors import AfvsrError
from afvsr.io_utils import atomic_path
from afvsr.train import distributed as D
from afvsr.train.config import config_diff, config_to_toml
from afvsr.train.logbook import MetricsLog, close_logging, setup_logging
from afvsr.train.sampler import SeededSamples, StepBatchSampler, derive_seed, worker_init_fn
from afvsr.train.state import read_checkpoint, restore_checkpoint, save_checkpoint
from afvsr.train.task import ModuleGroup, Task
from afvsr.train.tasks import TASKS

CHECKPOINT_RE = re.compile(r"^step_(\d+)\.safetensors$")


def lr_at(step: int, base_lr: float, train_cfg: dict[str, Any]) -> float:
    """Learning rate of a group with ``base_lr`` for optimizer step ``step`` (0-based).

    Linear warm-up over ``warmup_iters`` steps (``base_lr * (step + 1) / warmup_iters``), then
    ``constant``, or ``cosine``: ``eta_min + (base_lr - eta_min) * (1 + cos(pi * p)) / 2`` with
    ``p`` going from 0 (first step after warm-up) to 1 (after the last step), as PyTorch's
    ``CosineAnnealingLR`` with ``T_max`` = the steps after warm-up.
    """
    warmup, total = train_cfg["warmup_iters"], train_cfg["iterations"]
    if step < warmup:
        return base_lr * (step + 1) / warmup
    if train_cfg["scheduler"] == "constant":
        return base_lr
    eta_min = min(train_cfg["eta_min"], base_lr)
    progress = (step - warmup) / max(1, total - warmup)
    return eta_min + (base_lr - eta_min) * 0.5 * (1.0 + math.cos(math.pi * progress))


def resolve_device(name: str, local_rank: int) -> torch.device:
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


def find_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every ``step_NNNNNNNN.safetensors`` in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := CHECKPOINT_RE.match(p.name))]
    return sorted(found)


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


def check_groups(model: nn.Module, groups: list[ModuleGroup]) -> None:
    """Every parameter of ``model`` in exactly one group, else ValueError naming it."""
    owner: dict[int, str] = {}
    for group in groups:
        for p in group.parameters():
            if id(p) in owner:
                name = next(n for n, q in model.named_parameters() if q is p)
                raise ValueError(
                    f"parameter {name} is in groups '{owner[id(p)]}' and '{group.name}'; "
                    "expected each parameter in exactly one group"
                )
            owner[id(p)] = group.name
    for name, p in model.named_parameters():
        if id(p) not in owner:
            raise ValueError(f"parameter {name} is in no parameter group")


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
        run, tcfg = cfg["run"], cfg["train"]
        self.tcfg = tcfg
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if tcfg["batch_size"] % world:
            raise AfvsrError(
                f"{source}: [train] batch_size: the global batch {tcfg['batch_size']} must be "
                f"divisible by the {world} processes"
            )
        if tcfg["precision"] == "fp16" and not (
            run["device"] != "cpu" and torch.cuda.is_available()
        ):
            raise AfvsrError(
                f'{source}: [train] precision: fp16 needs CUDA; use "fp32" or "bf16" on the CPU'
            )
        for key in ("spynet_checkpoint", "backbone_checkpoint"):
            if tcfg[key] and not Path(tcfg[key]).is_file():
                raise AfvsrError(
                    f"{source}: [train] {key}: no file {tcfg[key]} (train that stage first, or "
                    f"--set train.{key}='\"\"' to start without it)"
                )
        self.dist = D.init_distributed(
            "cuda" if run["device"] != "cpu" and torch.cuda.is_available() else "cpu"
        )
        self.device = resolve_device(run["device"], self.dist.local_rank)
        if run["threads"]:
            torch.set_num_threads(run["threads"])
        self._set_determinism(run["deterministic"])

        self.run_dir = Path(run["out_dir"]) / run["name"]
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.resume_path = self._resume_path(resume)
        if self.dist.is_main:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        D.barrier(self.dist)
        self.log = setup_logging(
            verbose=verbose, is_main=self.dist.is_main, log_file=self.run_dir / "train.log"
        )

        seed_everything(run["seed"])
        self.task: Task = TASKS[run["task"]](cfg)
        self.model = self.task.build_model().to(self.device)
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
        self.autocast_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[
            tcfg["precision"]
        ]
        self.scaler = torch.amp.GradScaler("cuda", enabled=tcfg["precision"] == "fp16")
        self.step = 0
        self._config_diff_on_resume: list[str] = []
        self.best: dict[str, Any] = {
            "metric": self.task.best_metric,
            "mode": self.task.best_mode,
            "value": None,
            "step": None,
        }
        if self.resume_path is not None:
            self._load(self.resume_path)
        self.trainable: tuple[bool, ...] | None = None
        self.wrapper: nn.Module = _TaskForward(self.task, self.model)
        self.signal_received = False  # set by the signal handler, any time
        self.stop_requested = False  # the same, agreed on by all processes at a step's end

    # ------------------------------------------------------------------ setup helpers

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

    def _resume_path(self, resume: str | bool | None) -> Path | None:
        existing = find_checkpoints(self.ckpt_dir)
        if isinstance(resume, str):
            return Path(resume)
        if resume:
            return existing[-1][1] if existing else None
        if existing:
            raise AfvsrError(
                f"run folder {self.run_dir} already has checkpoints (last: {existing[-1][1].name}); "
                "pass --resume to continue it, or set another [run] name"
            )
        return None

    def _load(self, path: Path) -> None:
        meta, tensors = read_checkpoint(path)
        diff = config_diff(meta["config"], self.cfg)
        model_diff = [k for k in diff if k.startswith("model.")]
        if model_diff:
            raise AfvsrError(
                f"{path}: the checkpoint's model differs from the config's ({', '.join(model_diff)})"
            )
        self._config_diff_on_resume = diff
        restore_checkpoint(
            meta,
            tensors,
            model=self.model,
            optimizer=self.optimizer,
            ema_model=self.ema_model,
            source=str(path),
        )
        self.step = int(meta["step"])
        self.best = meta["best"]
        if meta.get("scaler"):
            self.scaler.load_state_dict(meta["scaler"])

    def _loader(self) -> Iterator[dict[str, Tensor]]:
        dataset = self.task.build_train_dataset()
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
        flag = torch.tensor(float(self.signal_received), device=self.device)
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
        decay = self.tcfg["ema_decay"]
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
        from afvsr.checkpoint import save_model

        save_model(
            self._eval_model(),
            path,
            extra={"train_step": str(self.step), "train_run": self.cfg["run"]["name"]},
        )

    # ------------------------------------------------------------------ the run

    @contextlib.contextmanager
    def _stop_signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM: finish the current step, save a checkpoint, exit (a second one kills)."""
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self.signal_received:
                signal.signal(signum, signal.SIG_DFL)
                raise KeyboardInterrupt
            self.signal_received = True
            self.log.warning("signal %d: stopping after this step (again to abort)", signum)

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def run(self) -> int:
        from tqdm import tqdm

        cfg, tcfg, lcfg = self.cfg, self.tcfg, self.cfg["log"]
        total, every_val = tcfg["iterations"], self.cfg["val"]["every"]
        metrics_log = None
        if self.dist.is_main:
            with atomic_path(self.run_dir / "config.toml") as tmp:
                tmp.write_text(config_to_toml(cfg), encoding="utf-8")
            metrics_log = MetricsLog(
                self.run_dir, tensorboard=lcfg["tensorboard"], start_step=self.step
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
        n_params = sum(p.numel() for p in self.model.parameters())
        self.log.info(
            "task %s, model %s (%d parameters), %d process(es) on %s, global batch %d x %d",
            self.task.name,
            cfg["model"]["name"],
            n_params,
            self.dist.world_size,
            self.device,
            tcfg["batch_size"],
            tcfg["accumulate"],
        )
        batches = self._loader() if self.step < total else iter(())
        # A progress bar on a terminal; in a log file (background runs) a line per log.every.
        interactive = sys.stderr.isatty()
        bar = tqdm(
            total=total,
            initial=self.step,
            unit="it",
            file=sys.stderr,
            dynamic_ncols=True,
            disable=not (self.dist.is_main and interactive),
        )
        loss_sum, loss_count, extras_sum = 0.0, 0, {}
        interval_start, interval_step = time.perf_counter(), self.step
        interval_cpu = time.process_time()
        try:
            with self._stop_signals():
                while self.step < total:
                    self._update_trainable()
                    lrs = self._set_lrs()
                    loss, extras = self._train_step(batches)
                    self.step += 1
                    loss_value = loss.item()
                    loss_sum, loss_count = loss_sum + loss_value, loss_count + 1
                    for k, v in extras.items():
                        extras_sum[k] = extras_sum.get(k, 0.0) + v.item()
                    main_lr = max(lrs.values())
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss_value:.4g}", lr=f"{main_lr:.3g}", refresh=False)
                    if self.step % lcfg["every"] == 0 or self.step == total:
                        elapsed = time.perf_counter() - interval_start
                        values = {
                            "loss": loss_sum / loss_count,
                            "lr": main_lr,
                            **{f"lr/{k}": v for k, v in lrs.items()},
                            **{f"train/{k}": v / loss_count for k, v in extras_sum.items()},
                            "it_s": (self.step - interval_step) / max(elapsed, 1e-9),
                            # CPU time of this process (all threads) per step: what the step
                            # costs, however busy the machine is.
                            "cpu_s_it": (time.process_time() - interval_cpu)
                            / max(self.step - interval_step, 1),
                        }
                        if metrics_log is not None:
                            metrics_log.scalars(self.step, values)
                        if not interactive:
                            eta = (total - self.step) / max(values["it_s"], 1e-9)
                            self.log.info(
                                "step %d/%d  loss %.5g  lr %.3g  %.3f it/s  ETA %s",
                                self.step,
                                total,
                                values["loss"],
                                main_lr,
                                values["it_s"],
                                time.strftime("%H:%M:%S", time.gmtime(eta))
                                if eta < 86400
                                else f"{eta / 86400:.1f} days",
                            )
                        self.log.debug(
                            "step %d lrs %s",
                            self.step,
                            " ".join(f"{k}={v:.3g}" for k, v in lrs.items()),
                        )
                        loss_sum, loss_count, extras_sum = 0.0, 0, {}
                        interval_start, interval_step = time.perf_counter(), self.step
                        interval_cpu = time.process_time()
                    # it/s and cpu_s_it count training steps only
                    paused, paused_cpu = time.perf_counter(), time.process_time()
                    if every_val and (self.step % every_val == 0 or self.step == total):
                        self._validate(metrics_log)
                    checkpoint_due = (
                        lcfg["checkpoint_every"] and self.step % lcfg["checkpoint_every"] == 0
                    )
                    if checkpoint_due or self.step == total or self.stop_requested:
                        self._save_step_checkpoint()
                    if self.stop_requested:
                        self.log.warning("stopped at step %d; continue with --resume", self.step)
                        return 0
                    interval_start += time.perf_counter() - paused
                    interval_cpu += time.process_time() - paused_cpu
            if self.dist.is_main:
                self._export(self.run_dir / "model_final.safetensors")
                self.log.info(
                    "done: %d steps; weights in %s",
                    self.step,
                    self.run_dir / "model_final.safetensors",
                )
            D.barrier(self.dist)
            return 0
        finally:
            bar.close()
            if metrics_log is not None:
                metrics_log.close()
            self.close()

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
