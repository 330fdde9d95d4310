"""One episode per thread id: a new run never reuses an id, and two runs never drive one at once.

A thread id names an episode's checkpoints and trace. Starting a second
episode under a used id appended a second ``episode_start`` to the finished
trace and new entries after the old ones in the checkpoint (``entry id 'e0'
out of order``), and two runs at once interleaved theirs until the episode
could not be resumed. So:

* :class:`ThreadExists` — a new episode on an id that has one is refused
  (continue it with ``mcr resume``, or pick another id);
* :class:`ThreadLock` — an episode holds its id's lock while it runs (a run or
  a resume); a second one on that id is refused at once with
  :class:`ThreadBusy` rather than waiting, since what it would do after the
  first ends (start again on a finished episode) is refused anyway.

This module imports nothing heavy: the command line names its errors without
loading the loop.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from pathlib import Path
from typing import Any

__all__ = ["ThreadBusy", "ThreadExists", "ThreadLock"]


class ThreadExists(ValueError):
    """A new episode was asked for under a thread id that already has one (or onto a trace that holds one)."""


class ThreadBusy(RuntimeError):
    """Another run (process or agent) is driving this thread id right now."""


class ThreadLock:
    """An exclusive, non-blocking lock on one thread id of a workdir, held while an episode runs.

    The lock is an ``flock`` on ``WORKDIR/locks/THREAD-HASH.lock``: the kernel
    drops it when its process dies, even by SIGKILL, so a crash never leaves a
    thread locked. Each ``ThreadLock`` opens its own file description, so two
    agents in one process exclude each other too.
    """

    def __init__(self, workdir: str | Path, thread_id: str):
        safe = re.sub(r"[^\w.-]", "_", thread_id)[:80]  # a plain file name, whatever the id holds
        digest = hashlib.sha256(thread_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        self.thread_id = thread_id
        self.path = Path(workdir) / "locks" / f"{safe}-{digest}.lock"
        self._fd: int | None = None

    def acquire(self) -> ThreadLock:
        """Take the lock, or raise :class:`ThreadBusy` at once."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ThreadBusy(f"thread {self.thread_id!r} is running now in another process or agent "
                             f"(it holds {self.path}); wait for it to end, or use another thread id") from None
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor drops the flock

    def __enter__(self) -> ThreadLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
