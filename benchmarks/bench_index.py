"""What a video index costs to build and what it saves (measured, not asserted).

For each length, makes the long suite's needle-in-a-haystack video
(`examples/make_long_suite.py`: 320x180, 4 fps, a 15 s narrated scene after
another), builds its index with ``mcr index`` **in a fresh process** under an
empty ``MCR_INDEX_DIR`` (cold), then opens it from a second fresh process and
runs three queries (warm). Reports per length:

* build wall time, each stage's seconds, and the unit costs behind the
  up-front/on-demand choices: decode+analysis frames per second, OCR and
  detector seconds per change point, Whisper seconds per second of speech,
  embedding seconds per text;
* what the choices saved, from those unit costs: OCR at change points vs at
  every 1 fps frame, Whisper on speech regions vs on the whole audio
  (estimates: a measured unit cost times the count that was avoided);
* peak RSS of the build process (its own ``ru_maxrss``) — flat in length?;
* the warm process: seconds to open and query, frames decoded and Whisper
  calls (both must be 0);
* index size on disk.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_index.py --minutes 2 10
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_index.py --minutes 10 30 60

Writes ``--out`` (default runs/bench_index): ``media/`` (videos, reused),
``index-<M>/`` (each length's index folder) and ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

# Runs `mcr index` in this process and reports the process's own peak RSS (children excluded).
_BUILD = """
import resource, sys
from mcr.cli import main
code = main(["index", sys.argv[1], "--json"])
print("RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""

_WARM = """
import json, resource, sys, time
t0 = time.perf_counter()
from mcr.context import TimeSpan
from mcr.model.media.video import frames_decoded
from mcr.tools.video_index import VideoIndex
from mcr.tools.video_index.speech import PROCESS_COUNTERS
t1 = time.perf_counter()
index = VideoIndex.open(sys.argv[1])
opened = time.perf_counter()
status = index.build()
hits = index.search("the number the narrator says", k=5)
words = index.transcript(TimeSpan(start=60, end=120))
screen = index.text_on_screen()
done = time.perf_counter()
print(json.dumps(dict(import_s=t1 - t0, open_s=opened - t1, query_s=done - opened, complete=status.complete,
                      hits=len(hits), segments=len(words), screen=len(screen), frames=frames_decoded(),
                      asr_calls=PROCESS_COUNTERS["asr_calls"],
                      rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def run_length(minutes: int, out: Path, seed: int) -> dict:
    from make_long_suite import make_long_video

    _video, facts, render_s = make_long_video(out / "media", minutes, seed)
    video = out / "media" / f"long{minutes}.mp4"
    root = out / f"index-{minutes}"
    shutil.rmtree(root, ignore_errors=True)
    env = {**os.environ, "MCR_INDEX_DIR": str(root), "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _BUILD, str(video)], capture_output=True, text=True, env=env, cwd=ROOT)
    build_s = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"mcr index failed on {video}:\n{proc.stderr[-3000:]}")
    status = json.loads(proc.stdout.strip().splitlines()[-1])
    rss_kb = int(next(line.split()[1] for line in proc.stderr.splitlines() if line.startswith("RSS_KB")))
    warm = subprocess.run([sys.executable, "-c", _WARM, str(video)], capture_output=True, text=True, env=env, cwd=ROOT)
    if warm.returncode != 0:
        raise SystemExit(f"warm query failed:\n{warm.stderr[-3000:]}")
    c, stages = status["counters"], status["stages"]
    duration = status["duration"]
    g = lambda name: c.get(name, 0.0)  # noqa: E731
    picture_s = stages["picture"]["seconds"]
    ocr_per = g("ocr_s") / g("ocr_frames") if g("ocr_frames") else None
    asr_per_speech_s = g("asr_s") / g("speech_s") if g("speech_s") else None
    row = {
        "minutes": minutes, "duration_s": duration, "render_s": round(render_s, 1), "build_s": round(build_s, 1),
        "stage_s": {k: round(v["seconds"], 1) for k, v in stages.items()},
        "frames_decoded": g("frames_decoded"), "frames_analysed": g("frames_analysed"),
        "decode_analyse_fps": round(g("frames_decoded") / max(1e-9, picture_s - g("ocr_s") - g("detector_s")), 1),
        "captures": g("captures"), "ocr_s_per_capture": ocr_per and round(ocr_per, 3),
        "detector_s_per_capture": round(g("detector_s") / g("detector_frames"), 3) if g("detector_frames") else None,
        "ocr_calls_at_1fps": int(duration), "ocr_s_at_1fps_est": ocr_per and round(ocr_per * duration, 1),
        "ocr_s_at_change_points": round(g("ocr_s"), 1),
        "speech_s": round(g("speech_s"), 1), "speech_share": round(g("speech_s") / duration, 3),
        "asr_calls": g("asr_calls"), "asr_s": round(g("asr_s"), 1),
        "asr_s_per_speech_s": asr_per_speech_s and round(asr_per_speech_s, 3),
        "asr_s_whole_audio_est": asr_per_speech_s and round(asr_per_speech_s * duration, 1),
        "audio_decode_s": round(g("audio_decode_s"), 1), "vad_s": round(g("vad_s"), 1),
        "texts_embedded": g("texts_embedded"),
        "embed_s_per_text": round(g("embed_s") / g("texts_embedded"), 4) if g("texts_embedded") else None,
        "peak_rss_mb": round(rss_kb / 1024), "index_mb": round(status["size_bytes"] / 1e6, 2),
        "warm": json.loads(warm.stdout.strip().splitlines()[-1]),
    }
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, nargs="+", default=[2, 10])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_index")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    summary_path = args.out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    for minutes in args.minutes:
        row = run_length(minutes, args.out, args.seed)
        row["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
        summary[str(minutes)] = row
        summary_path.write_text(json.dumps(summary, indent=1) + "\n")
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
