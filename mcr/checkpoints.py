"""Checkpoints whose cost per step does not grow with the episode.

LangGraph's ``SqliteSaver`` stores every channel's whole value in every
checkpoint. The context is an append-only list, so step *k* would write all
*k* earlier entries again: quadratic bytes over an episode, and a per-step
cost that grows (measured in ``benchmarks/bench_loop.py``). This saver stores
each entry once, in a table of its own keyed by thread and position, and the
checkpoint keeps only how many entries it holds; reading a checkpoint puts the
list back together. Entries are immutable and only ever appended within a
thread, which is what makes sharing them between that thread's checkpoints
correct (the graph never rewinds a thread to branch it).

SQLite runs in WAL mode with ``synchronous=NORMAL``: a commit survives the
process being killed at any point (the case the resume tests cover); after a
power loss the database is intact but may lack its last commits, and the
episode resumes from the checkpoint before them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict
from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

__all__ = ["EpisodeSaver", "ENTRIES_CHANNEL"]

ENTRIES_CHANNEL = "entries"
_STORED_CACHE = 256  # threads whose stored-entry count is remembered (the rest are read back from the table)
_MARK = "__mcr_entries__"  # the checkpoint's stand-in for the list: {"__mcr_entries__": count}


class EpisodeSaver(SqliteSaver):
    """A ``SqliteSaver`` that stores the append-only ``entries`` channel once per entry.

    Args:
        conn: the SQLite connection (``check_same_thread=False`` for LangGraph's threads).
        allowed_types: ``(module, class)`` pairs the state holds as pydantic
            objects, which the serializer may rebuild.
    """

    def __init__(self, conn: sqlite3.Connection, allowed_types: list[tuple[str, str]] | None = None):
        super().__init__(conn, serde=JsonPlusSerializer(allowed_msgpack_modules=allowed_types or []))
        self._entries_lock = threading.Lock()
        # (thread, namespace) -> entries stored: a cache of MAX(idx), bounded so that an agent
        # running thousands of episodes does not keep one key per episode forever
        self._stored: OrderedDict[tuple[str, str], int] = OrderedDict()

    def setup(self) -> None:
        """Create the tables. Runs under ``self.lock`` (``SqliteSaver.cursor`` takes it first)."""
        if self.is_setup:
            return
        super().setup()
        self.conn.executescript(
            """
            PRAGMA synchronous=NORMAL;
            CREATE TABLE IF NOT EXISTS mcr_entries (
                thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL DEFAULT '',
                idx INTEGER NOT NULL, data TEXT NOT NULL,
                PRIMARY KEY (thread_id, checkpoint_ns, idx));
            """
        )

    # -- writing ------------------------------------------------------------- #
    def put(self, config, checkpoint, metadata, new_versions):
        values = checkpoint.get("channel_values", {})
        entries = values.get(ENTRIES_CHANNEL)
        if isinstance(entries, list):
            conf = config["configurable"]
            self._store(conf["thread_id"], conf.get("checkpoint_ns", ""), entries)
            checkpoint = {**checkpoint, "channel_values": {**values, ENTRIES_CHANNEL: {_MARK: len(entries)}}}
        return super().put(config, checkpoint, metadata, new_versions)

    def _store(self, thread_id: str, ns: str, entries: list[dict[str, Any]]) -> None:
        key = (thread_id, ns)
        with self._entries_lock, self.lock:
            self.setup()  # setup() expects the lock held, as SqliteSaver.cursor() holds it
            stored = self._stored.get(key)
            if stored is None:
                row = self.conn.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM mcr_entries "
                                        "WHERE thread_id = ? AND checkpoint_ns = ?", key).fetchone()
                stored = int(row[0])
            new = entries[stored:]
            if new:
                self.conn.executemany(
                    "INSERT OR IGNORE INTO mcr_entries (thread_id, checkpoint_ns, idx, data) VALUES (?, ?, ?, ?)",
                    [(thread_id, ns, stored + i, json.dumps(e, separators=(",", ":"))) for i, e in enumerate(new)],
                )
                self.conn.commit()
            self._stored[key] = max(stored, len(entries))
            self._stored.move_to_end(key)
            while len(self._stored) > _STORED_CACHE:
                self._stored.popitem(last=False)

    # -- reading ------------------------------------------------------------- #
    def get_tuple(self, config):
        found = super().get_tuple(config)
        return self._inflate(found) if found is not None else None

    def list(self, config, *, filter=None, before=None, limit=None):
        # SqliteSaver.list holds self.lock while it yields, and _inflate takes that lock:
        # read the rows first (inflating inside its loop deadlocked every get_state_history).
        for found in [*super().list(config, filter=filter, before=before, limit=limit)]:
            yield self._inflate(found)

    def _inflate(self, found):
        values = found.checkpoint.get("channel_values", {})
        mark = values.get(ENTRIES_CHANNEL)
        if not (isinstance(mark, dict) and _MARK in mark):
            return found
        conf = found.config["configurable"]
        with self.lock:
            rows = self.conn.execute(
                "SELECT data FROM mcr_entries WHERE thread_id = ? AND checkpoint_ns = ? AND idx < ? ORDER BY idx",
                (conf["thread_id"], conf.get("checkpoint_ns", ""), int(mark[_MARK])),
            ).fetchall()
        if len(rows) != int(mark[_MARK]):
            raise RuntimeError(f"checkpoint of thread {conf['thread_id']!r} holds {mark[_MARK]} entries but only "
                               f"{len(rows)} are stored: the checkpoint database is damaged")
        values[ENTRIES_CHANNEL] = [json.loads(r[0]) for r in rows]
        return found
