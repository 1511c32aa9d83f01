"""Handing freed tensor memory back to the OS during long streaming runs (glibc malloc).

glibc serves an allocation from ``mmap`` (returned to the OS on free) only above a threshold
that, by default, rises to the size of every mmapped block freed, up to 32 MiB. Frame-sized
tensors (a 64-channel 320×180 feature map is 14 MiB) then come from the heap, where blocks
freed between live ones cannot be returned: chunk after chunk of a long video, resident memory
creeps up past what one chunk needs. A fixed 1 MiB threshold keeps every frame-sized tensor in
its own mapping.
"""

from __future__ import annotations

import ctypes
import functools
import sys

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)


@functools.cache
def return_large_frees_to_os(threshold: int = 1 << 20) -> bool:
    """Serve allocations of ``threshold`` bytes or more by ``mmap``, for the whole process.

    Setting it also turns off glibc's dynamic threshold. Returns True where applied (Linux with
    glibc), False elsewhere (other C libraries and systems keep their own policy).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return mallopt(M_MMAP_THRESHOLD, threshold) == 1


def reset_peak_rss() -> bool:
    """Start measuring this process's peak resident memory afresh (Linux: ``clear_refs`` 5).

    Returns False where the peak cannot be reset (then :func:`peak_rss` is the lifetime peak).
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss() -> int | None:
    """Peak resident memory of this process in bytes: since :func:`reset_peak_rss` on Linux
    (``VmHWM``), else over its lifetime (``getrusage``); None where neither can be read."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # macOS bytes, Linux KiB
    except ImportError:  # Windows
        return None
