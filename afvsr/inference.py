"""Running a model for inference: device, precision and memory format in one place.

Used by ``afvsr upscale``, ``afvsr eval`` and the benchmarks, so every path runs the model the
same fast way: eval mode, channels-last weights (oneDNN's fastest layout for these convs on CPU,
and Tensor-Core friendly on CUDA), ``torch.inference_mode`` and, for bf16/fp16, autocast with the
parts that need it (flow coordinates, the final residual add) kept in fp32 by the models.
The default precision, ``"auto"``, is bf16 where the device computes it natively (CUDA with bf16,
CPUs with AVX-512 BF16 or AMX) and fp32 elsewhere (:func:`resolve_precision`).
"""

from __future__ import annotations

import contextlib
import functools
import sys

import torch
from torch import Tensor, nn

from afvsr.models.common import channels_last_weights

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# What ``--precision`` accepts: a precision, or "auto" (bf16 where the device has it natively).
PRECISION_CHOICES = ("auto", *PRECISIONS)
DEFAULT_PRECISION = "auto"


@functools.cache
def cpu_info() -> dict[str, str]:
    """The first CPU's fields in ``/proc/cpuinfo`` (``"model name"``, ``"flags"``, ...); empty
    where it cannot be read."""
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the end of the first CPU's block
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return info


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where it cannot be read)."""
    return frozenset(cpu_info().get("flags", "").split())


def cpu_has_native_bf16() -> bool:
    """True when oneDNN can run bf16 convs natively: the CPU has AVX-512 BF16 or AMX (read from
    its flags, not from what the torch build supports)."""
    flags = cpu_flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: str | torch.device) -> str:
    """``"auto"`` → ``"bf16"`` where ``device`` computes bf16 natively (CUDA with bf16 support; a
    CPU with AVX-512 BF16 or AMX), else ``"fp32"``; any other value is returned as given."""
    if precision != "auto":
        return precision
    dev = torch.device(device)
    if dev.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if dev.type == "cpu" and cpu_has_native_bf16() else "fp32"


# Said where bf16 is asked for on a CPU without it: torch then runs bf16 convs in slow kernels.
SLOW_BF16 = "this CPU has no native bf16 (AVX-512 BF16 or AMX): bf16 runs 10-100x slower than fp32"


def check_precision(precision: str, device: str | torch.device) -> None:
    """ValueError for an unknown precision or fp16 on CPU; a warning for bf16 on a CPU without it."""
    if precision not in PRECISION_CHOICES:
        raise ValueError(f"expected precision in {sorted(PRECISION_CHOICES)}, got {precision!r}")
    precision = resolve_precision(precision, device)
    dev = torch.device(device)
    if dev.type == "cpu" and precision == "fp16":
        raise ValueError("--precision fp16 needs --device cuda; on a CPU use fp32 or bf16")
    if dev.type == "cpu" and precision == "bf16" and not cpu_has_native_bf16():
        _warn_slow_bf16()


@functools.cache
def _warn_slow_bf16() -> None:
    """Printed once per process, however many clips or chunks ask for bf16."""
    print(f"afvsr: warning: {SLOW_BF16} (--precision auto picks fp32)", file=sys.stderr)


def resolve_device(device: str | torch.device) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when present); a clear error when
    CUDA is asked for but absent."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:  # torch's message lists twenty device types
        raise ValueError(f"expected device cpu, cuda, cuda:N or auto, got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but PyTorch sees no CUDA device here")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"expected device cpu or cuda, got {device!r}")
    return dev


def prepare_for_inference(
    model: nn.Module,
    *,
    device: str | torch.device = "cpu",
    precision: str = DEFAULT_PRECISION,
    compile: bool = False,
) -> nn.Module:
    """Eval mode, moved to ``device``, channels-last weights. Weights stay fp32 (autocast casts).

    ``compile=True`` wraps the model's per-frame sub-networks (the propagation branches and the
    reconstruction) in ``torch.compile``: worth it on CUDA for long videos; the Python loop over
    frames stays eager so clips of any length reuse one compiled graph per frame size.
    """
    check_precision(precision, device)
    model = channels_last_weights(model.eval().to(device))
    if compile:
        for name, child in list(model.named_children()):
            if name in ("propagation", "reconstruction", "attention"):
                for sub_name, sub in list(child.named_children()):
                    if isinstance(sub, nn.Module) and any(True for _ in sub.parameters()):
                        setattr(child, sub_name, torch.compile(sub, dynamic=False))
    return model


def autocast_context(device: torch.device, precision: str):
    """fp32: a no-op context; bf16/fp16: ``torch.autocast`` (the models keep flow coordinates and
    the final residual add in fp32); auto: see :func:`resolve_precision`."""
    check_precision(precision, device)
    precision = resolve_precision(precision, device)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=PRECISIONS[precision])


def run_model(
    model: nn.Module, lq: Tensor, *, precision: str = DEFAULT_PRECISION, **forward_kwargs
) -> Tensor:
    """``lq (b, t, 3, h, w)`` → ``(b, t, 3, s*h, s*w)`` float32, under inference mode and autocast."""
    device = next(iter(model.parameters()), lq).device
    lq = lq.to(device)
    with torch.inference_mode(), autocast_context(device, precision):
        return model(lq, **forward_kwargs).float()
