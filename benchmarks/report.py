"""What every benchmark prints: the machine it ran on, and its JSON report (stdout + a file)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import torch

from afvsr.inference import cpu_flags, cpu_info
from afvsr.io_utils import atomic_path


def cpu_kind() -> dict[str, Any]:
    """torch's CPU capability (e.g. "AVX512") and whether the CPU has native bf16 (AVX-512 BF16,
    AMX), read from its flags: what decides the speed of fp32 and bf16 convs."""
    flags = cpu_flags()
    return {
        "capability": torch.backends.cpu.get_cpu_capability(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx": "amx_bf16" in flags or "amx_tile" in flags,
    }


def machine() -> dict[str, Any]:
    """CPU, threads, the CPU kind (:func:`cpu_kind`) and versions, and the load average: the
    facts needed to compare a report with another one."""
    kind = cpu_kind()
    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_model": cpu_info().get("model name", ""),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "cpu_capability": kind["capability"],
        "avx512_bf16": kind["avx512_bf16"],
        "amx": kind["amx"],
        "load_average": list(os.getloadavg()),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def emit(report: dict[str, Any], output: str | os.PathLike | None = None) -> None:
    """Print ``report`` as indented JSON; also write it to ``output`` (atomically) if given."""
    print(json.dumps(report, indent=2))
    if output:
        save(report, output)


def save(report: dict[str, Any], output: str | os.PathLike) -> None:
    """Write ``report`` as indented JSON to ``output``, atomically (a partial report of a long
    run replaces the previous one whole)."""
    with atomic_path(Path(output)) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
