"""Text-slide videos for index tests: real H.264, a new word on a new background every few seconds."""

from __future__ import annotations

from pathlib import Path

WORDS = ["HARBOUR", "GARDEN", "TIMBER", "COPPER", "VIOLET", "MEADOW", "CANYON", "LANTERN", "PEBBLE", "ORCHARD",
         "SADDLE", "MARBLE", "FALCON", "THISTLE", "GRANITE", "WILLOW", "BASKET", "CINDER", "HAMMER", "PLANET"]


def make_slides(path: Path, seconds: float, slide_s: float = 1.5, fps: int = 12, size=(320, 180), seed: int = 0,
                keyint: int | None = None) -> Path:
    """A silent H.264 video of text slides: a new word on a new background every `slide_s` seconds.

    `keyint`: the encoder's keyframe interval in frames (x264's default, 250, when None).
    """
    import av
    import cv2
    import numpy as np

    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("h264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"threads": "1", **({"g": str(keyint)} if keyint else {})}
        for i in range(int(seconds * fps)):
            slide = int(i / fps / slide_s)
            shade = 40 + (slide * 97 + seed * 31) % 170
            img = np.full((height, width, 3), (shade, 255 - shade, (shade * 3) % 255), np.uint8)
            word = WORDS[(slide + seed) % len(WORDS)]
            cv2.putText(img, word, (20, height // 2 + 12), cv2.FONT_HERSHEY_SIMPLEX, 1.3, (255, 255, 255), 3, cv2.LINE_AA)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
