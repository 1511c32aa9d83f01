"""Freed frame-sized tensors go back to the OS once ``return_large_frees_to_os`` is set."""

import subprocess
import sys

import pytest

from afvsr.memory import return_large_frees_to_os

# Frees 16 MiB (raising glibc's dynamic mmap threshold), then allocates forty 8 MiB tensors with
# a 200 KB survivor after each, frees the big ones and prints how much resident memory stayed.
SCRIPT = r"""
import sys, torch
torch.set_num_threads(1)
def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
if sys.argv[1] == "set":
    from afvsr.memory import return_large_frees_to_os
    assert return_large_frees_to_os()
big = torch.ones(4 << 20)
del big
base = rss_mb()
keep, temp = [], []
for _ in range(40):
    temp.append(torch.ones(2 << 20))
    keep.append(torch.ones(50_000))
temp.clear()
print(rss_mb() - base)
"""


def retained_mb(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not return_large_frees_to_os(), reason="needs Linux with glibc")
def test_freed_frame_sized_tensors_leave_resident_memory():
    assert retained_mb("default") > 250  # the heap keeps the 320 MiB: survivors pin it
    assert retained_mb("set") < 20  # only the survivors' 8 MB
