"""`mcr.memory`: with the fixed mmap threshold, freed large buffers leave the process; without it they stay."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mcr.memory import glibc, release_freed_memory_promptly

PROBE = r"""
import sys
from mcr.memory import release_freed_memory_promptly

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024

if sys.argv[1] == "on":
    release_freed_memory_promptly()
probe = bytearray(8 * 2**20)  # freeing one mapped 8 MB block raises glibc's dynamic threshold to 8 MB
del probe
base = rss_mb()
big, small = [], []
for _ in range(60):  # 180 MB of 3 MB buffers, each followed by a small live one that pins the heap
    big.append(bytearray(3 * 2**20))
    small.append(bytearray(1000))
del big
print(rss_mb() - base)
"""


@pytest.mark.skipif(glibc() is None, reason="needs glibc: mallopt's mmap threshold, which mcr.memory sets, exists only there (musl, macOS: nothing to test)")
def test_freed_buffers_are_given_back_only_with_the_fixed_threshold():
    env = {**os.environ, "MCR_MMAP_THRESHOLD": ""}
    kept = {mode: float(subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=env,
                                       check=True).stdout) for mode in ("on", "off")}
    assert kept["off"] > 150, kept  # glibc's own threshold: the 180 MB stay resident
    assert kept["on"] < 30, kept  # each buffer had its own mapping, unmapped on free


def test_the_threshold_setting_is_read_and_checked(monkeypatch):
    monkeypatch.setenv("MCR_MMAP_THRESHOLD", "0")
    assert release_freed_memory_promptly() is False  # 0: glibc's dynamic threshold is left alone
    monkeypatch.setenv("MCR_MMAP_THRESHOLD", "two megabytes")
    with pytest.raises(ValueError, match="MCR_MMAP_THRESHOLD"):
        release_freed_memory_promptly()
