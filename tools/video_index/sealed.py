"""Build state saved between chunks, sealed so that only this user's own builds are ever unpickled.

The picture pass resumes a killed build exactly by saving its scanner, which
holds PySceneDetect's detector; the detectors have no serial form but pickle.
Unpickling runs code, and an index file is data another process (or person) may
have written, so the pickled bytes are sealed with an HMAC-SHA256 under a key
only this user can read (``index-state.key`` in the user's cache folder, mode
0600, made on first use). Bytes whose seal does not verify are never unpickled:
:class:`UnsealedState` says so and the caller rebuilds from scratch.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import secrets
from pathlib import Path
from typing import Any

from mcr.model.runtime.loader import user_cache_dir

__all__ = ["UnsealedState", "seal", "unseal"]

_MAC_BYTES = 32


class UnsealedState(Exception):
    """Saved build state whose seal does not verify (written by another user, another key, or tampered)."""


def _key() -> bytes:
    path = user_cache_dir() / "index-state.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        key = secrets.token_bytes(32)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key
    except FileExistsError:  # pragma: no cover - two first uses at once
        return Path(path).read_bytes()


def seal(state: Any) -> bytes:
    body = pickle.dumps(state)
    return hmac.new(_key(), body, hashlib.sha256).digest() + body


def unseal(data: bytes) -> Any:
    """The state :func:`seal` wrote; raises :class:`UnsealedState` (nothing is unpickled) if the seal fails."""
    mac, body = data[:_MAC_BYTES], data[_MAC_BYTES:]
    if len(mac) != _MAC_BYTES or not hmac.compare_digest(mac, hmac.new(_key(), body, hashlib.sha256).digest()):
        raise UnsealedState("the saved build state is not sealed by this user's key")
    return pickle.loads(body)  # sealed: bytes this user's own build wrote
