"""A long generated video, made cheaply: low resolution, one frame a second, silent, a scene a minute.

Issue 22's window test needs a two-hour video; encoding 7,200 small frames
with PyAV takes seconds, and the file is a few MB. Each scene has its own
brightness and hue (cuts a detector and the overview's frame differences
see), and one scene in the middle holds a word on screen (a needle to locate).
"""

from __future__ import annotations

from pathlib import Path

NEEDLE_WORD = "HARBOUR"


def write_long_video(path: Path, minutes: float = 120.0, fps: int = 1, size: tuple[int, int] = (320, 180),
                     scene_s: float = 60.0, needle_at_s: float | None = None) -> Path:
    """Write a silent H.264 video of ``minutes`` at ``fps``; returns ``path``.

    A keyframe every 10 s keeps seeking cheap (what the exploration tools do).
    """
    import av
    import cv2
    import numpy as np

    width, height = size
    total = int(minutes * 60 * fps)
    needle_at_s = minutes * 60 * 0.61 if needle_at_s is None else needle_at_s
    with av.open(str(path), "w") as container:
        stream = container.add_stream("h264", rate=fps, options={"g": str(10 * fps), "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(total):
            t = i / fps
            scene = int(t // scene_s)
            value = 40 + (scene * 37) % 180  # brightness differs from one scene to the next
            frame = np.zeros((height, width, 3), np.uint8)
            frame[:] = ((value * (scene % 3 == 0)) or 30, (value * (scene % 3 == 1)) or 30, (value * (scene % 3 == 2)) or 30)
            if abs(t - needle_at_s) < scene_s / 2:
                cv2.putText(frame, NEEDLE_WORD, (20, height // 2 + 15), cv2.FONT_HERSHEY_SIMPLEX, 1.6,
                            (255, 255, 255), 3, cv2.LINE_AA)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
