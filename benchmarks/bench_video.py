"""Frame sampling benchmark: keyframe seek + short decode vs sequential decode, and the frame store.

Makes a 30 fps 1280x720 H.264 clip with PyAV at run time (default 64 s; the
picture is a textured panorama panning at 4 px a frame, with film grain, so
every frame differs and the bitrate is that of real footage, ~5 Mbit/s), then, side by side in one
run, takes frames at fps=4 (the "on screen at t" frame, as the model sees them):

* ``whole``: all of the clip. `read_frames_at` (seek to the keyframe before
  the first time, decode on, seek again across gaps over ``SEEK_GAP_S``)
  against a sequential reader that decodes every frame from the start.
* ``span``: a 10 s span in the middle. The same two, the sequential reader
  stopping at the span's end (the least a reader without seeking must
  decode) — and, for reference, the sequential reader over the whole file
  (a reader that loads the video and then slices it).
* ``cached``: the span asked for a second time through a `FrameStore`
  against the cold first request.

Both readers convert to RGB only the frames they return, and use the same
decoder threads, so the difference is decoding alone. Each figure checks the
frames are identical (pixel for pixel) to the sequential reader's.

One JSON line per figure. Run:
``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_video.py [--seconds 64] [--gop 250]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from mcr.model.media.video import FrameStore, _upright, read_frames_at

WIDTH, HEIGHT, FPS = 1280, 720, 30


def emit(figure: str, **values) -> None:
    print(json.dumps({"figure": figure, **values}), flush=True)


def make_clip(path: Path, seconds: float, gop: int) -> float:
    """Write the test clip; returns the seconds it took to encode."""
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (HEIGHT // 16, (WIDTH * 3) // 16, 3), dtype=np.uint8)
    import cv2

    panorama = cv2.resize(coarse, ((WIDTH * 3), HEIGHT), interpolation=cv2.INTER_CUBIC)  # smooth texture
    panorama = np.clip(panorama.astype(np.int16) + rng.integers(-12, 13, panorama.shape), 0, 255).astype(np.uint8)
    grain = rng.integers(-10, 11, (8, HEIGHT, WIDTH, 1), dtype=np.int16)  # film grain: real bitrates
    t0 = time.perf_counter()
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23", "g": str(gop)}
        for i in range(int(round(seconds * FPS))):
            x = (i * 4) % (panorama.shape[1] - WIDTH)
            image = np.clip(panorama[:, x : x + WIDTH] + grain[(i * 5) % len(grain)], 0, 255).astype(np.uint8)
            cv2.putText(image, f"{i:05d}", (40, 100), cv2.FONT_HERSHEY_SIMPLEX, 2.5, (255, 255, 255), 6)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return time.perf_counter() - t0


def sequential(path: Path, times: list[float], stop_at_last: bool) -> tuple[list[np.ndarray], int]:
    """Decode every frame from the start; return the frames on screen at `times` and how many were decoded."""
    wanted = sorted(times)
    out: dict[float, np.ndarray] = {}
    decoded, k, prev = 0, 0, None
    eps = 1e-4
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            decoded += 1
            while k < len(wanted) and frame.time > wanted[k] + eps:
                out[wanted[k]] = _upright(prev if prev is not None else frame)
                k += 1
            prev = frame
            if stop_at_last and k == len(wanted):
                break
        while k < len(wanted):  # times at or past the last frame
            out[wanted[k]] = _upright(prev)
            k += 1
    return [out[t] for t in times], decoded


def timed(fn, repeat: int):
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def compare(figure: str, path: Path, times: list[float], repeat: int, **extra) -> None:
    seek_s, frames = timed(lambda: read_frames_at(path, times), repeat)
    seq_s, (ref, decoded) = timed(lambda: sequential(path, times, stop_at_last=True), repeat)
    same = all(np.array_equal(f.image, r) for f, r in zip(frames, ref))
    values = dict(frames=len(times), seek_s=round(seek_s, 3), sequential_s=round(seq_s, 3),
                  speedup=round(seq_s / seek_s, 2), sequential_decoded=decoded, identical=same, **extra)
    if figure == "span":
        whole_s, (ref2, all_decoded) = timed(lambda: sequential(path, times, stop_at_last=False), repeat)
        values.update(sequential_whole_file_s=round(whole_s, 3), speedup_vs_whole_file=round(whole_s / seek_s, 2),
                      whole_file_decoded=all_decoded)
        values["identical"] = same and all(np.array_equal(f.image, r) for f, r in zip(frames, ref2))
    emit(figure, **values)


def grid(start: float, end: float, fps: float) -> list[float]:
    return [k / fps for k in range(int(np.ceil(start * fps)), int(np.ceil(end * fps)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=64.0, help="clip length (>= 60)")
    parser.add_argument("--gop", type=int, default=250, help="keyframe interval in frames (libx264's default 250)")
    parser.add_argument("--fps", type=float, default=4.0, help="sampling rate")
    parser.add_argument("--span", type=float, default=10.0, help="span length (s), centred in the clip")
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs per method")
    parser.add_argument("--clip", type=Path, help="reuse (or keep) the clip at this path")
    args = parser.parse_args()

    emit("machine", cpus=os.cpu_count(), platform=platform.platform(), python=platform.python_version(),
         pyav=av.__version__, ffmpeg=".".join(str(v) for v in av.library_versions["libavcodec"]))
    with tempfile.TemporaryDirectory() as tmp:
        path = args.clip or Path(tmp) / "clip.mp4"
        encode_s = None if path.is_file() else make_clip(path, args.seconds, args.gop)
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            keyframes = sum(1 for p in c.demux(s) if p.is_keyframe)
            duration = float(s.duration * s.time_base)
        emit("clip", seconds=round(duration, 2), size=f"{WIDTH}x{HEIGHT}", fps=FPS, gop=args.gop,
             keyframes=keyframes, mbytes=round(path.stat().st_size / 2**20, 1),
             encode_s=round(encode_s, 1) if encode_s else None)

        compare("whole", path, grid(0.0, duration, args.fps), args.repeat, fps=args.fps)
        mid = duration / 2
        span = (mid - args.span / 2, mid + args.span / 2)
        times = grid(*span, args.fps)
        compare("span", path, times, args.repeat, fps=args.fps, span=[round(v, 2) for v in span])

        store = FrameStore(max_bytes=2**31)
        cold_s, first = timed(lambda: read_frames_at(path, times, store=store), 1)
        warm_s, again = timed(lambda: read_frames_at(path, times, store=store), max(3, args.repeat))
        emit("cached", frames=len(times), cold_s=round(cold_s, 3), cached_s=round(warm_s, 6),
             speedup=round(cold_s / max(warm_s, 1e-9), 0), store_mbytes=round(store.nbytes / 2**20, 1),
             identical=all(a.image is b.image for a, b in zip(first, again)))


if __name__ == "__main__":
    main()
