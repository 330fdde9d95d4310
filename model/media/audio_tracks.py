"""Whole decoded audio tracks, from which every span is cut.

A policy asks for many spans of one video (a scene, then a sentence in it,
then the whole film). Decoding each span from the file costs a seek and a
decode; cutting it from the track decoded once costs microseconds — and a
span's samples are then exactly those of the full decode, so a span hears
what the whole run heard. Tracks are kept as memory-mapped ``.npy`` files
keyed by file content, so a later episode on the same video decodes nothing.

A long file is the exception: its whole track was already decoded once, in
chunks, by the video index (`mcr.tools.video_index.speech`), and decoding it
again whole for one 30-second span would be the second whole decode issue 22
rules out. A short span of a file longer than `WHOLE_TRACK_MAX_S` whose track
is not already on disk has only the span decoded (a seek; its samples sit on the same
grid as the full decode's, `mcr.model.media.audio.load_audio`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from mcr.model.media.audio import SAMPLE_RATE, AudioClip, audio_duration, decode_blocks, load_audio
from mcr.model.media.video import VideoNotFound

__all__ = ["AudioTracks", "WHOLE_TRACK_MAX_S"]

WHOLE_TRACK_MAX_S = 600.0  # longer files are decoded span by span unless their whole track is on disk already


class AudioTracks:
    """Whole decoded tracks, one per file content, from which spans are cut.

    The first request for a file decodes its entire first audio track (16 kHz
    mono float32, ~500x real time for AAC on one core, 3.8 MB per minute) and,
    with a `root`, streams it block by block into ``root/<key>.npy`` (written
    atomically) and memory-maps that file — in this process and any later one —
    so a long film costs disk, not memory, even while it is decoded. The last
    `max_tracks` tracks stay open.

    Args:
        root: folder for the decoded tracks; None keeps them in memory only.
        max_tracks: how many tracks stay open at once.
    """

    def __init__(self, root: str | Path | None = None, max_tracks: int = 4):
        self.root = Path(root) if root is not None else None
        self.max_tracks = max_tracks
        self._open: OrderedDict[str, AudioClip] = OrderedDict()
        self.decodes = 0  # full decodes done by this object (the rest were cuts)
        self.span_decodes = 0  # spans of long files decoded alone

    @staticmethod
    def _name(path: str | Path, key: str | None) -> str:
        """The track's file name: its content key (default the resolved path, size and mtime) and sample rate."""
        path = Path(path)
        if key is None:
            if not path.is_file():
                raise VideoNotFound(path)
            stat = path.stat()
            key = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        return hashlib.sha256(f"{key}:{SAMPLE_RATE}".encode()).hexdigest()[:32]

    def track(self, path: str | Path, key: str | None = None) -> AudioClip:
        """The whole track of `path`.

        Args:
            key: what identifies the file's content (e.g. its SHA-256); default
                its resolved path, size and modification time.

        Raises:
            the errors of `load_audio`.
        """
        path = Path(path)
        name = self._name(path, key)
        clip = self._open.get(name)
        if clip is not None:
            self._open.move_to_end(name)
            return clip
        file = self.root / f"{name}.npy" if self.root is not None else None
        if file is not None:
            if not file.is_file():
                _stream_to_file(path, file)  # block by block: the track is never whole in memory
                self.decodes += 1
            clip = AudioClip(np.load(file, mmap_mode="r"), SAMPLE_RATE, 0.0)
        else:
            clip = load_audio(path)  # the whole track, from time zero
            self.decodes += 1
            if clip.offset > 0:  # a track that starts late: pad so sample 0 is time 0
                lead = np.zeros(int(round(clip.offset * SAMPLE_RATE)), np.float32)
                clip = AudioClip(np.concatenate([lead, clip.samples]), SAMPLE_RATE, 0.0)
        self._open[name] = clip
        while len(self._open) > self.max_tracks:
            self._open.popitem(last=False)
        return clip

    def clip(self, path: str | Path, start: float = 0.0, end: float | None = None, key: str | None = None) -> AudioClip:
        """The part of `path`'s track between `start` and `end` seconds: a view of the whole track, or, for a
        span of at most `WHOLE_TRACK_MAX_S` of a longer file whose track is not yet on disk, the span alone."""
        name = self._name(path, key)
        saved = self.root is not None and (self.root / f"{name}.npy").is_file()
        short_span = end is not None and end - start <= WHOLE_TRACK_MAX_S  # a long one is streamed to disk whole
        if name not in self._open and not saved and short_span and audio_duration(path) > WHOLE_TRACK_MAX_S:
            self.span_decodes += 1
            return load_audio(path, start, end)
        whole = self.track(path, key)
        return whole.cut(start, whole.end if end is None else end)


def _stream_to_file(path: Path, file: Path) -> None:
    """Decode `path`'s whole track into the ``.npy`` `file`, one decoded block at a time.

    The samples are exactly `load_audio(path)`'s (priming before time zero
    dropped, a late start padded with zeros so sample 0 is time 0), written as
    they come to a raw temporary file; the ``.npy`` header, which needs the
    length, is written last and the file renamed into place, so a crash never
    leaves half a track. Memory: one block, whatever the length (issue 22).
    """
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, raw = tempfile.mkstemp(dir=file.parent, suffix=".raw.tmp")
    out = None
    try:
        count = 0
        with os.fdopen(fd, "wb") as f:
            skip = 0
            started = False
            for t0, block in decode_blocks(path):
                if not started:
                    started = True
                    if t0 < 0:  # encoder priming (AAC): samples before time zero
                        skip = int(round(-t0 * SAMPLE_RATE))
                    elif t0 > 0:  # a track that starts late
                        lead = np.zeros(int(round(t0 * SAMPLE_RATE)), np.float32)
                        f.write(lead.tobytes())
                        count += len(lead)
                if skip:
                    cut = min(skip, len(block))
                    block, skip = block[cut:], skip - cut
                f.write(np.ascontiguousarray(block, np.float32).tobytes())
                count += len(block)
        fd, out = tempfile.mkstemp(dir=file.parent, suffix=".npy.tmp")
        with os.fdopen(fd, "wb") as f, open(raw, "rb") as src:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (count,)})
            while chunk := src.read(1 << 22):
                f.write(chunk)
        os.replace(out, file)
    except BaseException:
        if out is not None:
            Path(out).unlink(missing_ok=True)
        raise
    finally:
        Path(raw).unlink(missing_ok=True)
