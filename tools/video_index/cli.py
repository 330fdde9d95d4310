"""`mcr index VIDEO…`: build the persistent index of each video ahead of the questions.

Registered by `mcr.cli` with one line (``add_parser(sub)``), like ``mcr eval``
and ``mcr serve``. Shows a bar per stage with the video seconds covered and a
time estimate (on a terminal), prints one status line per video, and exits 0
when every index is complete. Interrupted (Ctrl-C, a kill), it keeps what it
committed: running it again continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from mcr.tools.video_index.records import BuildProgress, IndexSettings


def _setting(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set wants NAME=VALUE (an IndexSettings field), not {text!r}")
    name, value = text.split("=", 1)
    if name not in IndexSettings.model_fields:
        raise argparse.ArgumentTypeError(
            f"--set {name}: not an index setting; use one of {', '.join(sorted(IndexSettings.model_fields))}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value  # a bare string (e.g. vad=energy)


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "index", help="build the persistent index of videos (shots, text on screen, speech, scenes, embeddings)",
        description="Build each VIDEO's index once: every later question, process and entry point (run, eval, "
                    "serve, mcp) reads it instead of decoding and transcribing again. Resumable: run it again "
                    "after an interruption and it continues where it stopped.")
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video files")
    parser.add_argument("--index-dir", help="where index files live (default $MCR_INDEX_DIR or ~/.cache/mcr/index)")
    parser.add_argument("--set", dest="settings", action="append", type=_setting, default=[], metavar="NAME=VALUE",
                        help="an index setting, e.g. --set vad=energy --set chunk_s=10 (a changed setting is "
                             "a different index)")
    parser.add_argument("--status", action="store_true", help="only report each index's state; build nothing")
    parser.add_argument("--json", action="store_true", help="print each index's status as one JSON line")
    parser.add_argument("--no-wait", action="store_true", help="fail instead of waiting when another process builds it")
    parser.set_defaults(func=cmd_index)


def cmd_index(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from mcr.progress import progress
    from mcr.tools.video_index.store import IndexLocked, IndexUnavailable
    from mcr.tools.video_index.video_index import VideoIndex

    try:
        settings = IndexSettings(**dict(args.settings))
    except ValidationError as exc:
        print(f"mcr index: error: bad --set value: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}",
              file=sys.stderr)
        return 2
    failed = 0
    for video in args.videos:
        try:
            index = VideoIndex.open(video, settings, root=args.index_dir)
        except IndexUnavailable as exc:
            print(f"mcr index: error: {exc}", file=sys.stderr)
            return 2
        bars: dict[str, Any] = {}

        def report(p: BuildProgress) -> None:
            bar = bars.get(p.stage)
            if bar is None:
                bar = bars[p.stage] = progress(desc=f"{index.video.name}: {p.stage}", unit="s", total=round(p.total_s, 1))
            bar.n = round(p.done_s, 1)
            if p.eta_s is not None:
                bar.set_postfix_str(f"about {p.eta_s:.0f}s left", refresh=False)
            bar.refresh()

        started = time.monotonic()
        try:
            status = index.status() if args.status else index.build(progress=report, wait=not args.no_wait)
        except IndexLocked as exc:
            print(f"mcr index: {exc}; run again without --no-wait to wait for it", file=sys.stderr)
            failed += 1
            continue
        finally:
            for bar in bars.values():
                bar.close()
        if args.json:
            print(status.model_dump_json())
        else:
            stages = ", ".join(f"{k} {'done' if v.done else f'{v.until_s:.0f}s'}" for k, v in status.stages.items())
            c = status.counters
            print(f"{index.video}: {'complete' if status.complete else 'incomplete'} ({stages}); "
                  f"{c.get('frames_decoded', 0):.0f} frames decoded, {c.get('captures', 0):.0f} change points, "
                  f"{c.get('speech_s', 0):.0f}s of speech transcribed; {status.size_bytes / 1e6:.1f} MB; "
                  f"{time.monotonic() - started:.1f}s -> {status.path}")
        failed += not status.complete and not args.status
    return 1 if failed else 0
