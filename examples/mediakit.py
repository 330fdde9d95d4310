"""Drawing, speech and muxing shared by the example generators.

Why one module: `make_sample.py` (the demo's video) and `make_suite.py` (the
truth suite) both draw frames with OpenCV, speak with espeak-ng and mux
H.264 + AAC with PyAV (OpenCV cannot write audio). Keeping those steps here
means a fix to speech trimming or encoder options reaches both, and both stay
byte-for-byte repeatable.

Not a package: the generators import it as a sibling module (their own folder
is on ``sys.path`` when run as scripts).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np

SAMPLE_RATE = 22050  # espeak-ng's native rate; no resampling, no artefacts
SILENCE_LEVEL = 300  # |int16| below this counts as silence when trimming speech


def draw_title(img: np.ndarray, text: str, color: tuple[int, int, int], y: int = 50, scale: float = 1.4, thick: int = 3) -> None:
    """Centre `text` horizontally on `img` (BGR, drawn in place), baseline at `y`."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    (w, _), _ = cv2.getTextSize(text, font, scale, thick)
    cv2.putText(img, text, ((img.shape[1] - w) // 2, y), font, scale, color, thick, cv2.LINE_AA)


def speak(text: str, voice: str = "en-us", words_per_minute: int = 130, word_gap: int = 0) -> np.ndarray:
    """espeak-ng speech for `text`, trimmed to its first and last loud sample.

    Returns int16 mono samples at SAMPLE_RATE. Trimming makes a narration's
    recorded span the span of actual speech, not of espeak's padding.
    `word_gap` adds pauses between words (espeak's -g, in 10 ms units).

    Raises:
        SystemExit: espeak-ng is missing (with the install command) or wrote no speech.
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SystemExit("espeak-ng is not installed: `apt-get install -y espeak-ng` (Debian/Ubuntu)")
    cmd = [exe, "-v", voice, "-s", str(words_per_minute), *(["-g", str(word_gap)] if word_gap else []), "--stdout", text]
    wav = subprocess.run(cmd, check=True, capture_output=True).stdout
    # espeak streams its WAV, so the header's sizes are placeholders: take every
    # byte after the "data" chunk id and size as samples.
    if wav[:4] != b"RIFF" or b"data" not in wav[:200]:
        raise SystemExit(f"espeak-ng did not write a WAV file for {text!r}")
    rate = int.from_bytes(wav[24:28], "little")
    if rate != SAMPLE_RATE:
        raise SystemExit(f"espeak-ng wrote {rate} Hz audio; this script expects {SAMPLE_RATE} Hz")
    data = wav[wav.index(b"data") + 8 :]
    samples = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > SILENCE_LEVEL)
    if loud.size == 0:
        raise SystemExit(f"espeak-ng produced silence for {text!r}")
    return samples[loud[0] : loud[-1] + 1].copy()


def place_speech(track: np.ndarray, speech: np.ndarray, start_s: float, limit_s: float, what: str) -> tuple[float, float]:
    """Copy `speech` into `track` at `start_s`; return its (start, end) in seconds.

    Raises:
        SystemExit: the speech would run past `limit_s` (it would overlap what follows).
    """
    start = int(round(start_s * SAMPLE_RATE))
    end = start + len(speech)
    if end > int(round(limit_s * SAMPLE_RATE)) or end > len(track):
        raise SystemExit(f"{what} is longer than the time it has ({limit_s - start_s:.2f} s)")
    track[start:end] = speech
    return round(start / SAMPLE_RATE, 3), round(end / SAMPLE_RATE, 3)


def write_video(
    path: Path,
    paint: Callable[[int], np.ndarray],
    n_frames: int,
    fps: int,
    size: tuple[int, int],
    track: np.ndarray,
    crf: int = 26,
    audio_bit_rate: int = 48_000,
) -> None:
    """Mux H.264 video (``paint(frame_index)`` → BGR frame) and AAC mono audio (`track`, int16).

    One encoder thread and fixed options keep the encode byte-for-byte repeatable.
    """
    width, height = size
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"crf": str(crf), "preset": "medium", "threads": "1", "g": str(fps * 2)}
        audio = out.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        audio.bit_rate = audio_bit_rate

        for index in range(n_frames):
            frame = av.VideoFrame.from_ndarray(paint(index), format="bgr24")
            frame.pts = index
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)

        chunk = 1024  # AAC frame size
        for offset in range(0, len(track), chunk):
            block = track[offset : offset + chunk]
            frame = av.AudioFrame.from_ndarray(block[None, :], format="s16", layout="mono")
            frame.sample_rate, frame.pts = SAMPLE_RATE, offset
            for packet in audio.encode(frame):
                out.mux(packet)
        for packet in audio.encode():
            out.mux(packet)


def srt_time(seconds: float) -> str:
    millis = int(round(seconds * 1000))
    return f"{millis // 3_600_000:02d}:{millis // 60_000 % 60:02d}:{millis // 1000 % 60:02d},{millis % 1000:03d}"


def write_srt(path: Path, cues: list[tuple[float, float, str]]) -> None:
    """A sidecar .srt from (start, end, text) cues, as many real videos ship one."""
    blocks = [f"{i}\n{srt_time(s)} --> {srt_time(e)}\n{text}\n" for i, (s, e, text) in enumerate(cues, start=1)]
    path.write_text("\n".join(blocks), encoding="utf-8")


class StreamingWriter:
    """Mux H.264 + AAC mono piece by piece, so an hour of video never sits in memory.

    Why not `write_video`: it takes the whole audio track at once (an hour at
    22,050 Hz is 160 MB of samples) and writes every video packet before any
    audio packet. Long generated videos are mostly still pictures, so this
    writer takes a still image and a frame count (`add_still`: the picture is
    converted to YUV once and encoded again with each new timestamp) and audio
    in blocks (`add_audio`); the muxer interleaves the two by time. One encoder
    thread and fixed options keep the output byte-for-byte repeatable.

    Use as a context manager; leaving it flushes both encoders and closes the file.
    """

    def __init__(self, path: Path, fps: int, size: tuple[int, int], crf: int = 30, audio_bit_rate: int = 32_000):
        self.fps, self.size = fps, size
        self._out = av.open(str(path), "w", format="mp4")
        self._video = self._out.add_stream("libx264", rate=fps)
        self._video.width, self._video.height, self._video.pix_fmt = size[0], size[1], "yuv420p"
        self._video.options = {"crf": str(crf), "preset": "medium", "threads": "1", "g": str(fps * 2)}
        self._audio = self._out.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        self._audio.bit_rate = audio_bit_rate
        self.frames_written = 0
        self.samples_written = 0
        self._pending = np.zeros(0, np.int16)  # audio not yet a whole AAC frame

    def __enter__(self) -> StreamingWriter:
        return self

    def __exit__(self, *exc) -> None:
        try:
            if exc[0] is None:
                self._flush()
        finally:
            self._out.close()

    def add_still(self, image: np.ndarray, n_frames: int) -> None:
        """Show `image` (BGR, the writer's size) for the next `n_frames` frames."""
        if image.shape[:2] != (self.size[1], self.size[0]):
            raise ValueError(f"frame of shape {image.shape} does not match the writer's size {self.size}")
        frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
        for _ in range(n_frames):
            frame.pts = self.frames_written
            for packet in self._video.encode(frame):
                self._out.mux(packet)
            self.frames_written += 1

    def add_audio(self, samples: np.ndarray) -> None:
        """Append int16 mono samples at SAMPLE_RATE to the audio track."""
        block = np.concatenate([self._pending, samples.astype(np.int16, copy=False)])
        chunk = 1024  # AAC frame size
        whole = len(block) // chunk * chunk
        for offset in range(0, whole, chunk):
            self._encode_audio(block[offset : offset + chunk])
        self._pending = block[whole:].copy()

    def _encode_audio(self, block: np.ndarray) -> None:
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block)[None, :], format="s16", layout="mono")
        frame.sample_rate, frame.pts = SAMPLE_RATE, self.samples_written
        for packet in self._audio.encode(frame):
            self._out.mux(packet)
        self.samples_written += len(block)

    def _flush(self) -> None:
        if len(self._pending):
            self._encode_audio(self._pending)
            self._pending = np.zeros(0, np.int16)
        for packet in self._video.encode():
            self._out.mux(packet)
        for packet in self._audio.encode():
            self._out.mux(packet)
