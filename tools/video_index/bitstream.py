"""Where the encoder says the picture changed: packet sizes and keyframes, read without decoding.

Why: decoding is the one cost of the picture pass that grows with every
frame of the video (an hour of 1080p at 30 fps is 108,000 frames), yet the
encoder has already measured change for us. H.264/HEVC encoders start a new
keyframe at a scene cut, re-encode a still picture into keyframes of the same
size, and spend bytes on a predicted frame only where its picture differs
from the one before. Reading the packets costs a demux (no pixels): the whole
hour of the long suite's video in under 0.1 s.

`plan_looks` turns the packet table into the frames worth decoding:

* a keyframe whose bytes are not those of the previous keyframe (a still
  picture re-encoded as a keyframe repeats its bytes, bar a few header bits
  and a shift of them, `repeats_picture`; a cut, a title or a photo changes
  them: measured on the long suite, ≥ 99.8% of the bytes agree for the same
  picture and ≤ 23% for another one, even when the sizes are within 3%);
* a predicted frame that is a size spike: more than ``spike_ratio`` times the
  median of its group's predicted frames and at least ``spike_share`` of its
  group's keyframe (a change the encoder did not mark with a keyframe);
* a keyframe at least every ``max_gap_s`` seconds, so a slow change that never
  spikes (a pan, a fade) is still seen.

Real footage with motion varies every keyframe's size, so there every
keyframe is looked at (typically 1–3% of frames); a static hour costs one
look per ``max_gap_s``. Measured in `benchmarks/RESULTS.md` ("Fifth session").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PacketTable:
    """The video stream's packets in presentation order: pts (stream units), size (bytes), keyframe flag."""

    pts: np.ndarray  # (n,) int64
    size: np.ndarray  # (n,) int64
    key: np.ndarray  # (n,) bool
    repeat: np.ndarray  # (n,) bool: a keyframe whose bytes repeat the previous keyframe's (`repeats_picture`)

    def __len__(self) -> int:
        return int(self.pts.shape[0])


@dataclass(frozen=True)
class Look:
    """One frame to decode: its pts, and the pts of the keyframe decoding must start from."""

    pts: int
    key_pts: int
    why: str  # "first", "new keyframe", "spike" or "gap": for counters and debugging, never parsed


def read_packets(container, stream) -> PacketTable:
    """Demux every packet of `stream` (no decoding) into a table sorted by pts.

    Packets without a pts (rare; some raw streams) make the table empty, which
    `plan_looks` callers treat as "decode every frame".
    """
    pts: list[int] = []
    size: list[int] = []
    key: list[bool] = []
    repeat: list[bool] = []
    last_key: bytes | None = None  # only the previous keyframe's bytes are held: memory stays flat
    for packet in container.demux(stream):
        if packet.size == 0:  # the demuxer's flush packet
            continue
        if packet.pts is None:
            return PacketTable(*(np.zeros(0, t) for t in (np.int64, np.int64, bool, bool)))
        pts.append(int(packet.pts))
        size.append(int(packet.size))
        key.append(bool(packet.is_keyframe))
        repeat.append(False)
        if packet.is_keyframe:
            payload = bytes(packet)
            repeat[-1] = last_key is not None and repeats_picture(last_key, payload)
            last_key = payload
    order = np.argsort(np.asarray(pts, np.int64), kind="stable")
    return PacketTable(np.asarray(pts, np.int64)[order], np.asarray(size, np.int64)[order],
                       np.asarray(key, bool)[order], np.asarray(repeat, bool)[order])


def repeats_picture(a: bytes, b: bytes, agree: float = 0.9, max_shift: int = 8, max_size_change: float = 0.03) -> bool:
    """Whether keyframe payload `b` encodes the picture `a` did.

    The same picture re-encoded differs only in a few header fields (the
    picture's id and order count), which can shift the rest by a few bytes:
    the best agreement over shifts up to `max_shift` bytes is then ≥ 99%.
    Sizes more than `max_size_change` apart are another picture outright.
    """
    if abs(len(a) - len(b)) > max_size_change * max(len(a), len(b), 1):
        return False
    x, y = np.frombuffer(a, np.uint8), np.frombuffer(b, np.uint8)
    for shift in range(-max_shift, max_shift + 1):
        u, v = x[max(0, shift):], y[max(0, -shift):]
        n = min(len(u), len(v))
        if n and np.count_nonzero(u[:n] == v[:n]) >= agree * max(len(x), len(y)):
            return True
    return False


def plan_looks(table: PacketTable, time_base: float, max_gap_s: float = 30.0,
               spike_ratio: float = 4.0, spike_share: float = 0.25) -> list[Look]:
    """The frames worth decoding, in pts order (see the module docstring for the three reasons)."""
    n = len(table)
    if n == 0:
        return []
    keys = np.flatnonzero(table.key)
    if keys.size == 0 or keys[0] != 0:  # a stream that does not open on a keyframe: decode from its start
        keys = np.concatenate([[0], keys])
    chosen: dict[int, str] = {0: "first"}
    # keyframes that do not repeat the previous one's picture
    for cur in keys[1:]:
        if not table.repeat[cur]:
            chosen.setdefault(int(cur), "new keyframe")
    # spikes inside each group of pictures
    bounds = list(keys) + [n]
    for g in range(len(keys)):
        lo, hi = int(bounds[g]), int(bounds[g + 1])
        if hi - lo < 3:
            continue
        predicted = table.size[lo + 1 : hi]
        floor = max(spike_ratio * float(np.median(predicted)), spike_share * float(table.size[lo]))
        for i in np.flatnonzero(predicted > floor):
            chosen.setdefault(lo + 1 + int(i), "spike")
    # a keyframe at least every max_gap_s
    gap = max_gap_s / time_base
    looked = sorted(int(table.pts[i]) for i in chosen)
    j, last = 0, int(table.pts[0])
    for k in keys:
        at = int(table.pts[k])
        while j < len(looked) and looked[j] <= at:
            last, j = max(last, looked[j]), j + 1
        if at - last >= gap:
            chosen.setdefault(int(k), "gap")
            last = at
    key_of = np.searchsorted(keys, np.arange(n), side="right") - 1  # each packet's group
    return [Look(pts=int(table.pts[i]), key_pts=int(table.pts[keys[key_of[i]]]), why=why)
            for i, why in sorted(chosen.items())]
