"""The index's file: one SQLite database per (video content, settings, versions) key.

Why SQLite: a build commits one chunk at a time (a killed build loses at most
the chunk in progress and continues from the last commit), readers in other
processes see every committed chunk while a build goes on (WAL mode), and the
whole index is one file that can be copied or deleted.

Concurrency: one builder at a time per index, by an exclusive ``flock`` on
``<file>.lock`` (:meth:`IndexStore.build_lock`); a second builder waits for it
(then finds the work done) or, with ``wait=False``, goes on reading what is
finished. Readers never lock.

Tables: ``meta`` (key parts, video info), ``stage`` (per stage: done, how far,
wall time, resumable state), ``counters`` (what building cost), ``cuts``,
``captures`` (change points: time, colour histogram, text lines, detections),
``segments`` (speech with word times), ``scenes``, ``chapters``, ``docs``
(searchable texts with their MiniLM vectors).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from mcr.tools.video_index.records import STAGES, StageStatus

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stage (name TEXT PRIMARY KEY, done INTEGER NOT NULL DEFAULT 0,
    until_s REAL NOT NULL DEFAULT 0, seconds REAL NOT NULL DEFAULT 0, state BLOB);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS cuts (t REAL PRIMARY KEY);
CREATE TABLE IF NOT EXISTS captures (t REAL PRIMARY KEY, hist BLOB, lines TEXT NOT NULL, objects TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS segments (id INTEGER PRIMARY KEY, start REAL NOT NULL, "end" REAL NOT NULL,
    data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS segments_start ON segments(start);
CREATE TABLE IF NOT EXISTS scenes (idx INTEGER PRIMARY KEY, start REAL NOT NULL, "end" REAL NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chapters (idx INTEGER PRIMARY KEY, start REAL NOT NULL, "end" REAL NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (id INTEGER PRIMARY KEY, source TEXT NOT NULL, start REAL NOT NULL,
    "end" REAL NOT NULL, text TEXT NOT NULL, vec BLOB);
"""


class IndexLocked(Exception):
    """Another process is building this index and the caller chose not to wait."""


class IndexUnavailable(Exception):
    """The index file cannot be created or read (an unwritable folder, a damaged file); says what to do."""

    def __init__(self, path: Path, why: str):
        super().__init__(f"cannot open the video index {path}: {why} — set MCR_INDEX_DIR (or mcr index "
                         "--index-dir) to a writable folder, or delete the damaged file to rebuild it")


class IndexStore:
    """One index file: typed reads and chunk-sized, atomic writes.

    Thread-safe within a process (one connection, one lock): tools run on
    worker threads.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connect()
            with self.transaction() as db:
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
                for name in STAGES:
                    db.execute("INSERT OR IGNORE INTO stage(name) VALUES (?)", (name,))
        except (sqlite3.Error, OSError) as exc:
            raise IndexUnavailable(self.path, f"{type(exc).__name__}: {exc}") from None

    def _connect(self) -> None:
        self._pid = os.getpid()
        self._db = sqlite3.connect(str(self.path), timeout=60.0, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")

    def _conn(self) -> sqlite3.Connection:
        """This process's connection: a forked child (a worker) opens its own, never the parent's."""
        if self._pid != os.getpid():
            self._connect()
        return self._db

    def close(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                self._db.close()

    # -- transactions and locks ------------------------------------------ #
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: everything inside commits together or not at all."""
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn().execute(sql, args).fetchall()

    @contextmanager
    def build_lock(self, wait: bool = True) -> Iterator[None]:
        """Hold the exclusive build lock (``<file>.lock``); wait for it, or raise `IndexLocked`."""
        lock_path = self.path.with_suffix(".lock")
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            flags = fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB
            try:
                fcntl.flock(fd, flags)
            except BlockingIOError:
                raise IndexLocked(f"{self.path} is being built by another process") from None
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # -- meta, stages, counters ----------------------------------------- #
    def get_meta(self, key: str) -> Any:
        rows = self.query("SELECT v FROM meta WHERE k = ?", (key,))
        return json.loads(rows[0][0]) if rows else None

    def set_meta(self, db: sqlite3.Connection, key: str, value: Any) -> None:
        db.execute("INSERT OR REPLACE INTO meta(k, v) VALUES (?, ?)", (key, json.dumps(value, sort_keys=True)))

    def stages(self) -> dict[str, StageStatus]:
        rows = self.query("SELECT name, done, until_s, seconds FROM stage")
        found = {name: StageStatus(done=bool(done), until_s=until, seconds=secs) for name, done, until, secs in rows}
        return {name: found.get(name, StageStatus()) for name in STAGES}

    def stage_state(self, name: str) -> bytes | None:
        rows = self.query("SELECT state FROM stage WHERE name = ?", (name,))
        return rows[0][0] if rows else None

    @staticmethod
    def set_stage(db: sqlite3.Connection, name: str, *, until_s: float, seconds: float, done: bool = False,
                  state: bytes | None = None) -> None:
        """Record a stage's progress (inside the transaction that wrote its chunk)."""
        db.execute("UPDATE stage SET until_s = ?, seconds = seconds + ?, done = ?, state = ? WHERE name = ?",
                   (until_s, seconds, int(done), state, name))

    def counters(self) -> dict[str, float]:
        return {name: value for name, value in self.query("SELECT name, value FROM counters")}

    @staticmethod
    def add_counters(db: sqlite3.Connection, values: dict[str, float]) -> None:
        for name, value in values.items():
            if value:
                db.execute("INSERT INTO counters(name, value) VALUES (?, ?) "
                           "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", (name, float(value)))

    def size_bytes(self) -> int:
        files = [self.path, self.path.with_name(self.path.name + "-wal")]
        return sum(f.stat().st_size for f in files if f.exists())


def vec_to_blob(vec: np.ndarray) -> bytes:
    return np.ascontiguousarray(vec, np.float32).tobytes()


def blob_to_vec(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, np.float32)


class Stopwatch:
    """Seconds since the last `lap` (stage time is recorded per committed chunk)."""

    def __init__(self) -> None:
        self._t = time.monotonic()

    def lap(self) -> float:
        now = time.monotonic()
        out, self._t = now - self._t, now
        return out
