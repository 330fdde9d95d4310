"""The bad-input corpus's makers: videos, task files and a policy that speaks raw model text.

Nothing here is committed as a binary: every clip is written with PyAV when a
test runs (tiny sizes, so the whole corpus takes seconds). The `corpus`
fixture in conftest.py loads this module by path (pytest runs with
``--import-mode=importlib``, so test modules cannot import each other).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fractions
import io
import os
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np
import yaml

# --------------------------------------------------------------------------- #
# Videos
# --------------------------------------------------------------------------- #


def write_clip(path: Path, seconds: float = 2.0, fps: int = 12, size: tuple[int, int] = (64, 48), *,
               noise: bool = False, audio: bool = False, format: str | None = None,
               pts_ms: Sequence[int] | None = None) -> Path:
    """A small H.264 clip (no B-frames, so presentation order is decode order).

    Args:
        noise: random pixels (frames that do not compress: a truncation cuts through frames, not the header).
        audio: add a 440 Hz AAC track of the same length.
        format: the container (default: by suffix), e.g. ``mpegts``.
        pts_ms: variable frame rate: each frame's presentation time in milliseconds.
    """
    width, height = size
    rng = np.random.default_rng(0)
    times = list(pts_ms) if pts_ms is not None else None
    count = len(times) if times is not None else max(1, int(round(seconds * fps)))
    with av.open(str(path), "w", format=format) as container:
        stream = container.add_stream("h264", rate=fps, options={"bf": "0"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if times is not None:
            stream.codec_context.time_base = fractions.Fraction(1, 1000)
        sound = None
        if audio:
            sound = container.add_stream("aac", rate=16000)
            sound.layout = "mono"
        for i in range(count):
            if noise:
                pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
            else:
                pixels = np.full((height, width, 3), (i * 23) % 255, np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            if times is not None:
                frame.pts, frame.time_base = times[i], fractions.Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if sound is not None:
            _write_tone(container, sound, seconds)
    return path


def _write_tone(container, stream, seconds: float, rate: int = 16000) -> None:
    samples = int(seconds * rate)
    t = np.arange(samples) / rate
    wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for start in range(0, samples, 1024):
        chunk = wave[start:start + 1024]
        frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def write_audio_only(path: Path, seconds: float = 1.0) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        _write_tone(container, stream, seconds)
    return path


def write_png(path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (32, 24), "red").save(path, format="PNG")
    return path


def rotate_mp4(path: Path, clockwise: int = 90) -> Path:
    """Set the display matrix of an mp4's video track (``tkhd``), as a phone does for a portrait video.

    PyAV cannot write the matrix (libavformat's 'rotate' tag is gone), so the
    track header is patched in place: the classic ``rotate=90`` matrix
    [0, 1, 0; -1, 0, 0; 0, 0, 1] (16.16 fixed point) tells a player to turn
    the stored picture 90 degrees clockwise.
    """
    assert clockwise == 90, "only the 90 degree case is written"
    data = bytearray(path.read_bytes())
    at = data.find(b"tkhd")
    assert at > 0, f"{path} has no tkhd box"
    version = data[at + 4]
    matrix = at + 4 + 4 + (32 if version == 1 else 20) + 8 + 2 + 2 + 2 + 2
    data[matrix:matrix + 36] = struct.pack(">9i", 0, 1 << 16, 0, -(1 << 16), 0, 0, 0, 0, 1 << 30)
    path.write_bytes(bytes(data))
    return path


def left_half_white(path: Path, seconds: float = 1.0, fps: int = 12, size: tuple[int, int] = (64, 48)) -> Path:
    """A clip whose stored frames are white on the left half, black on the right (to see a rotation)."""
    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("h264", rate=fps, options={"bf": "0"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        pixels = np.zeros((height, width, 3), np.uint8)
        pixels[:, : width // 2] = 255
        for _ in range(int(seconds * fps)):
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


class GrowingFile:
    """Copies `source` into `target` in chunks from a writer thread, as a recorder still writing does."""

    def __init__(self, source: Path, target: Path, chunk: int = 2048, pause_s: float = 0.01):
        self.data, self.target, self.chunk, self.pause_s = source.read_bytes(), target, chunk, pause_s
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._write, daemon=True)

    def _write(self) -> None:
        with open(self.target, "ab") as out:
            for start in range(0, len(self.data), self.chunk):
                out.write(self.data[start:start + self.chunk])
                out.flush()
                self.done.wait(self.pause_s)
        self.done.set()

    def __enter__(self) -> GrowingFile:
        self.target.write_bytes(b"")
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._thread.join(timeout=30)


def run_unprivileged(fn: Callable[[], Any]) -> Any:
    """Run `fn` in a thread whose file-system user is `nobody` (Linux setfsuid), and return its result.

    Root reads a chmod-000 file anyway; a file-system uid other than 0 drops
    CAP_DAC_OVERRIDE for that thread only, so the permission check is real.
    Raises OSError when setfsuid is unavailable.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    box: dict[str, Any] = {}

    def worker() -> None:
        before = libc.setfsuid(65534)
        try:
            if libc.setfsuid(65534) != 65534:  # the call returns the previous fsuid: now it must be nobody
                raise OSError("setfsuid(nobody) did not take effect")
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            box["error"] = exc
        finally:
            libc.setfsuid(before)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


# --------------------------------------------------------------------------- #
# Task files and the CLI
# --------------------------------------------------------------------------- #

#: A cheap scripted plan: read the video's facts, answer with its duration (verify checks off: no model).
PLAN = [{"call": "video_info"}, {"answer": "{{ results.video_info.duration }} s"}]


def task_dict(video: str | Path, **keys: Any) -> dict[str, Any]:
    task = {"name": "corpus", "video": str(video), "question": "How long is the video?",
            "tools": ["video_info"], "verify": {"evidence": False},
            "budget": {"max_steps": 4, "max_tool_calls": 4, "wall_time_s": 120},
            "policy": {"name": "scripted", "plan": PLAN}}
    task.update(keys)
    return task


def write_task(path: Path, video: str | Path, **keys: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(task_dict(video, **keys), allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def write_suite(path: Path, tasks: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"suite": path.stem, "tasks": tasks}, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")
    return path


def mcr(*argv: str) -> tuple[int, str, str]:
    """Run the `mcr` command line in this process: (exit code, stdout, stderr)."""
    from mcr.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


# --------------------------------------------------------------------------- #
# Model output
# --------------------------------------------------------------------------- #


class RawTextPolicy:
    """Speaks raw model text, turn by turn, through the real parser (as a model policy does).

    Each reply goes through `parse_decision` with the registry, so what the
    graph receives is exactly what a model's text would become.
    """

    name = "raw-text"

    def __init__(self, replies: list[str], registry: Any):
        self.replies, self.registry = list(replies), registry
        self.parsed: list[Any] = []

    def decide(self, context: Any, tools: list[dict[str, Any]]) -> Any:
        from mcr.policies.base import PolicyError
        from mcr.policies.parsing import parse_decision

        if not self.replies:
            raise PolicyError("the raw-text policy has no replies left")
        options = context.instruction.options if context.instruction else None
        decision = parse_decision(self.replies.pop(0), tools, options=options, registry=self.registry)
        self.parsed.append(decision)
        return decision


def call(name: str, **arguments: Any) -> str:
    import json

    return f'<tool_call>{json.dumps({"name": name, "arguments": arguments})}</tool_call>'


@contextlib.contextmanager
def cwd(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)
