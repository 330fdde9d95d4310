"""`mcr import`: turn a benchmark's local annotations into a suite YAML for `mcr eval`.

    mcr import videomme test.json --videos VIDEOMME/data -o videomme.yaml
    mcr import path/to/lmms_eval/tasks/lvbench/lvbench.yaml video_info.meta.jsonl --videos LVBENCH -o lvbench.yaml

Exit codes: 0 written, 2 bad input (the message names the file, record and field).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def register(sub: Any) -> argparse.ArgumentParser:
    """Add the `import` subcommand to the `mcr` parser's subparsers."""
    from mcr.eval.importers import FORMATS
    from mcr.eval.presets import PRESETS

    p = sub.add_parser(
        "import", help="turn a benchmark's local annotations (or an lmms-eval task) into a suite for `mcr eval`",
        description="Read a benchmark's annotation file and local videos into a suite YAML. FORMAT is one of "
                    f"{', '.join(FORMATS)}, or the path of an lmms-eval task YAML. Nothing is downloaded.",
    )
    p.add_argument("format", metavar="FORMAT", help=f"{' | '.join(FORMATS)} | an lmms-eval task .yaml")
    p.add_argument("annotations", help="the annotation file (JSON, JSONL, parquet; Charades-STA .txt; MLVU: json/ folder)")
    p.add_argument("--videos", required=True, help="folder with the benchmark's videos")
    p.add_argument("-o", "--output", required=True, help="the suite YAML to write")
    p.add_argument("--name", help="the suite's name (default: the output file's stem)")
    p.add_argument("--preset", default="auto",
                   help=f"InternVideo3 evaluation settings: auto (the format's), none, or one of {', '.join(PRESETS)}")
    p.add_argument("--answers", help="EgoSchema: the answers file (default: subset_answers.json beside the questions)")
    p.add_argument("--limit", type=int, metavar="N", help="import only the first N tasks")
    p.add_argument("--skip-missing", action="store_true", help="drop tasks whose video is absent (a partial download)")
    p.add_argument("--keep-unanswered", action="store_true", help="keep questions without a public answer (unscored)")
    p.add_argument("--policy", help="set this policy in the suite's defaults (offline, internvideo3)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_import)
    return p


def cmd_import(args: argparse.Namespace) -> int:
    from mcr.eval.importers import BenchmarkImportError, ImportOptions, import_benchmark, write_suite
    from mcr.eval.presets import UnknownPreset

    if args.policy and args.policy not in ("offline", "internvideo3"):
        print(f"mcr: error: --policy {args.policy!r}: a suite's default policy is offline or internvideo3 "
              "(a scripted plan is written per task, not imported)", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        options = ImportOptions(
            videos=Path(args.videos), skip_missing_videos=args.skip_missing, keep_unanswered=args.keep_unanswered,
            limit=args.limit, answers=Path(args.answers) if args.answers else None,
        )
        preset = None if args.preset == "none" else args.preset
        tasks = import_benchmark(args.format, args.annotations, args.videos, preset=preset, options=options)
        defaults = {"policy": {"name": args.policy}} if args.policy else {}
        out = write_suite(tasks, args.output, name=args.name, defaults=defaults)
    except (BenchmarkImportError, UnknownPreset) as exc:
        print(f"mcr: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not args.quiet:
        skipped = "".join(f"; skipped {n} ({why})" for why, n in options.skipped.items())
        print(f"wrote {out}: {len(tasks)} tasks{skipped}")
    return EXIT_OK
