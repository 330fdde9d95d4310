"""Whole decoded audio tracks, from which every span is cut.

A policy asks for many spans of one video (a scene, then a sentence in it,
then the whole film). Decoding each span from the file costs a seek and a
decode; cutting it from the track decoded once costs microseconds — and a
span's samples are then exactly those of the full decode, so a span hears
what the whole run heard. Tracks are kept as memory-mapped ``.npy`` files
keyed by file content, so a later episode on the same video decodes nothing.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from mcr.model.media.audio import SAMPLE_RATE, AudioClip, load_audio
from mcr.model.media.video import VideoNotFound

__all__ = ["AudioTracks"]


class AudioTracks:
    """Whole decoded tracks, one per file content, from which spans are cut.

    The first request for a file decodes its entire first audio track (16 kHz
    mono float32, ~500x real time for AAC on one core, 3.8 MB per minute) and,
    with a `root`, writes it to ``root/<key>.npy`` atomically; later requests —
    in this process or a later one — memory-map that file, so a long film costs
    disk, not memory. The last `max_tracks` tracks stay open.

    Args:
        root: folder for the decoded tracks; None keeps them in memory only.
        max_tracks: how many tracks stay open at once.
    """

    def __init__(self, root: str | Path | None = None, max_tracks: int = 4):
        self.root = Path(root) if root is not None else None
        self.max_tracks = max_tracks
        self._open: OrderedDict[str, AudioClip] = OrderedDict()
        self.decodes = 0  # full decodes done by this object (the rest were cuts)

    def track(self, path: str | Path, key: str | None = None) -> AudioClip:
        """The whole track of `path`.

        Args:
            key: what identifies the file's content (e.g. its SHA-256); default
                its resolved path, size and modification time.

        Raises:
            the errors of `load_audio`.
        """
        path = Path(path)
        if key is None:
            if not path.is_file():
                raise VideoNotFound(path)
            stat = path.stat()
            key = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        name = hashlib.sha256(f"{key}:{SAMPLE_RATE}".encode()).hexdigest()[:32]
        clip = self._open.get(name)
        if clip is not None:
            self._open.move_to_end(name)
            return clip
        file = self.root / f"{name}.npy" if self.root is not None else None
        if file is not None and file.is_file():
            clip = AudioClip(np.load(file, mmap_mode="r"), SAMPLE_RATE, 0.0)
        else:
            clip = load_audio(path)  # the whole track, from time zero
            self.decodes += 1
            if clip.offset > 0:  # a track that starts late: pad so sample 0 is time 0
                lead = np.zeros(int(round(clip.offset * SAMPLE_RATE)), np.float32)
                clip = AudioClip(np.concatenate([lead, clip.samples]), SAMPLE_RATE, 0.0)
            if file is not None:
                _save_atomically(file, clip.samples)
        self._open[name] = clip
        while len(self._open) > self.max_tracks:
            self._open.popitem(last=False)
        return clip

    def clip(self, path: str | Path, start: float = 0.0, end: float | None = None, key: str | None = None) -> AudioClip:
        """The part of `path`'s track between `start` and `end` seconds (a view, no copy)."""
        whole = self.track(path, key)
        return whole.cut(start, whole.end if end is None else end)


def _save_atomically(file: Path, samples: np.ndarray) -> None:
    """np.save to a temporary file, then rename: a crash never leaves half a track."""
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=file.parent, suffix=".npy.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, np.ascontiguousarray(samples, np.float32))
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
