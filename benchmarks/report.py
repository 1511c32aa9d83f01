"""What every benchmark prints: the machine it ran on, and its JSON report (stdout + a file)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import torch

from afvsr.io_utils import atomic_path


def machine() -> dict[str, Any]:
    """CPU, threads, torch's CPU capability (e.g. "AVX2") and versions, and the load average:
    the facts needed to compare a report with another one."""
    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
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
