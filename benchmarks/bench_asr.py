"""ASR word error rate and cost, side by side: Whisper tiny.en against pocketsphinx.

Two test sets, both with an exact reference:

* ``sample`` — the narration of ``examples/media/sample.mp4`` (espeak-ng,
  AAC 48 kb/s), transcribed whole and span by span (one 6 s scene at a time),
  as the demo and a policy ask for it;
* ``espeak`` — ten other sentences (numbers, names, ordinary words) spoken by
  espeak-ng in two voices (en-us at 130 wpm like the sample, en-gb at 160
  wpm), one second of silence between sentences, written as 16-bit WAV. No
  sentence of it was used to choose a setting.

Also measured: what cutting spans from the once-decoded track saves against
decoding each span from the file (`mcr.model.media.audio_tracks.AudioTracks`).

    python benchmarks/bench_asr.py [--threads N]

Prints one JSON line per figure. Needs espeak-ng for the ``espeak`` set
(skipped with a note without it). The corpus builder is imported by
``tests/tools/test_asr_wer.py``, so the tests and these figures measure the
same audio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "media" / "sample.mp4"

SENTENCES = (
    "The train to Boston leaves at nine in the morning.",
    "Please put the blue box on the kitchen table.",
    "My sister bought four apples and a loaf of bread.",
    "The river was cold and the water moved very fast.",
    "We will meet at the old bridge after school.",
    "He opened the window because the room was too warm.",
    "Two dogs were playing in the park near the lake.",
    "She wrote a long letter to her friend in London.",
    "The doctor said the child should sleep for eight hours.",
    "A small plane landed on the grass beside the farm.",
)
VOICES = (("en-us", 130), ("en-gb", 160))
ESPEAK_RATE = 22050
GAP_S = 1.0


def espeak_corpus(out_dir: Path, voice: str, wpm: int) -> tuple[Path, str, list[tuple[float, float]]]:
    """SENTENCES spoken by espeak-ng into one WAV: (file, reference text, sentence spans).

    Raises:
        FileNotFoundError: espeak-ng is not installed.
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise FileNotFoundError("espeak-ng is not installed: apt-get install -y espeak-ng")
    track, spans = [np.zeros(int(0.5 * ESPEAK_RATE), np.int16)], []
    t = 0.5
    for text in SENTENCES:
        wav = subprocess.run([exe, "-v", voice, "-s", str(wpm), "--stdout", text],
                             check=True, capture_output=True).stdout
        data = wav[wav.index(b"data") + 8 :]
        speech = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")
        loud = np.flatnonzero(np.abs(speech.astype(np.int32)) > 300)
        speech = speech[loud[0] : loud[-1] + 1]
        spans.append((round(t, 3), round(t + len(speech) / ESPEAK_RATE, 3)))
        track += [speech, np.zeros(int(GAP_S * ESPEAK_RATE), np.int16)]
        t += len(speech) / ESPEAK_RATE + GAP_S
    path = out_dir / f"espeak-{voice}-{wpm}.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(ESPEAK_RATE)
        w.writeframes(np.concatenate(track).astype("<i2").tobytes())
    return path, " ".join(SENTENCES), spans


def sample_reference() -> tuple[str, list[tuple[float, float]]]:
    facts = json.loads(SAMPLE.with_suffix(".json").read_text())
    return (" ".join(s["narration"]["text"] for s in facts["scenes"]),
            [(s["start"], s["end"]) for s in facts["scenes"]])


def transcribe(tool, path: Path, workdir: Path, backend: str, span: tuple[float, float] | None = None,
               **settings) -> tuple[str, float]:
    from mcr.context import Context, VideoRef
    from mcr.tools.base import ToolContext

    ctx = ToolContext(context=Context(), video=VideoRef(path=str(path)), workdir=workdir,
                      settings={"cache": False, **settings})
    args = {"backend": backend} | ({"span": {"start": span[0], "end": span[1]}} if span else {})
    t0 = time.perf_counter()
    out = tool(args, ctx)
    return out.text, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="CTranslate2 threads for Whisper")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from mcr.model.media.audio import load_audio, word_error_rate
    from mcr.model.media.audio_tracks import AudioTracks
    from mcr.tools.asr import TranscribeTool

    tool = TranscribeTool()
    work = Path(tempfile.mkdtemp(prefix="bench_asr-"))
    settings = {"whisper_threads": args.threads}
    # Warm-up: load both models outside the timings.
    transcribe(tool, SAMPLE, work, "faster_whisper", (0.0, 6.0), **settings)
    transcribe(tool, SAMPLE, work, "pocketsphinx", (0.0, 6.0))

    ref, scenes = sample_reference()
    sets = [("sample", SAMPLE, ref, scenes, 24.0)]
    try:
        for voice, wpm in VOICES:
            path, text, spans = espeak_corpus(work, voice, wpm)
            sets.append((f"espeak-{voice}-{wpm}", path, text, None, spans[-1][1] + GAP_S))
    except FileNotFoundError as exc:
        print(json.dumps({"note": f"espeak set skipped: {exc}"}))
    for name, path, reference, pieces, seconds in sets:
        for backend in ("faster_whisper", "pocketsphinx"):
            hyp, took = transcribe(tool, path, work, backend, **settings)
            row = {"set": name, "backend": backend, "mode": "whole", "wer": round(word_error_rate(reference, hyp), 3),
                   "seconds": round(took, 2), "audio_s": round(seconds, 1), "hypothesis": hyp}
            print(json.dumps(row))
            if pieces:
                hyps, took = [], 0.0
                for span in pieces:
                    h, t = transcribe(tool, path, work, backend, span, **settings)
                    hyps.append(h)
                    took += t
                print(json.dumps({"set": name, "backend": backend, "mode": "per-scene spans",
                                  "wer": round(word_error_rate(reference, " ".join(hyps)), 3),
                                  "seconds": round(took, 2), "hypothesis": " | ".join(hyps)}))

    # Decoded-audio reuse: 4 spans decoded from the file each time, against cut from one decode.
    spans = scenes
    t0 = time.perf_counter()
    for a, b in spans:
        load_audio(SAMPLE, a, b)
    each = time.perf_counter() - t0
    tracks = AudioTracks(work / "audio")
    t0 = time.perf_counter()
    for a, b in spans:
        tracks.clip(SAMPLE, a, b)
    once = time.perf_counter() - t0
    t0 = time.perf_counter()
    for a, b in spans:
        tracks.clip(SAMPLE, a, b)
    warm = time.perf_counter() - t0
    print(json.dumps({"figure": "span audio: decode each span vs one decode then cuts", "spans": len(spans),
                      "decode_each_s": round(each, 4), "decode_once_s": round(once, 4), "cached_s": round(warm, 5),
                      "speedup_cached": round(each / max(warm, 1e-9), 1)}))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
