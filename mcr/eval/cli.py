"""`mcr eval`: the command-line face of mcr.eval (the subcommand and its handler).

    mcr eval SUITE.yaml [--out DIR] [--resume] [--limit N] [--policy NAME] [--mode single|agent] [--judge NAME]
    mcr eval --compare A B [--out DIR]

Exit codes as for the rest of `mcr`: 0 the run finished (every task has a
record), 1 some task raised (its record says why), 2 bad input.
Kept apart from mcr/cli.py so the evaluation's options live with the evaluation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the `eval` subcommand to the `mcr` parser's subparsers."""
    p = sub.add_parser(
        "eval", help="run a suite and score it (accuracy, evidence IoU, cost); or --compare two runs",
        description="Run every task of SUITE, score it against its truth and write results.jsonl, manifest.json, "
                    "report.md, report.json and plots into --out. A killed run continues with --resume.",
    )
    p.add_argument("suite", nargs="?", help="suite (or task) YAML file")
    p.add_argument("--out", help="results folder (default: .mcr/eval/SUITE-MODE-POLICY)")
    p.add_argument("--resume", action="store_true", help="skip tasks that already have a record in --out "
                                                          "(tasks that raised are tried again)")
    p.add_argument("--limit", type=int, metavar="N", help="run only the first N tasks")
    p.add_argument("--policy", help="run every task with this policy: scripted (a task's own plan, else the "
                                     "scripted baseline), offline, internvideo3, openai")
    p.add_argument("--mode", choices=("agent", "single"), default="agent",
                   help="agent: explore with tools (default); single: one model call, no tools")
    p.add_argument("--judge", help="open-ended answers: contains (default), f1, offline, module:function or file.py:function")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"), help="set two result folders side by side")
    p.add_argument("--no-report", action="store_true", help="write results only (report later with --compare or rerun)")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="shard the tasks over a Ray cluster (no ADDRESS: a local one); see mcr/eval/ray_runner.py")
    p.add_argument("--workers", type=int, default=2, help="with --ray: worker actors (default 2)")
    p.add_argument("--placement", choices=("affinity", "random"), default="affinity",
                   help="with --ray: tasks about one video on one worker (default), or at random")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=cmd_eval)
    return p


def default_out(suite: str, mode: str, policy: str | None) -> Path:
    return Path(".mcr") / "eval" / f"{Path(suite).stem}-{mode}-{policy or 'own'}"


def _fail(message: str) -> int:
    print(f"mcr: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def cmd_eval(args: argparse.Namespace) -> int:
    from mcr.eval.judges import JudgeError
    from mcr.eval.records import ResultsFileError
    from mcr.eval.report import CompareError, compare
    from mcr.eval.runner import EvalInputError, EvalOptions, run_suite
    from mcr.eval.single import SinglePassUnavailable

    out = Path(args.out) if args.out else default_out(args.suite or "suite", args.mode, args.policy)
    try:
        if args.compare:
            if args.suite:
                return _fail("--compare A B takes two result folders, not a suite; drop the suite argument")
            text, _ = compare(Path(args.compare[0]), Path(args.compare[1]), Path(args.out) if args.out else None)
            if not args.quiet:
                print(text, end="")
            return EXIT_OK
        if not args.suite:
            return _fail("give a suite file (mcr eval SUITE.yaml) or --compare A B")
        options = EvalOptions(suite=Path(args.suite), out=out, resume=args.resume, limit=args.limit,
                              policy=args.policy, mode=args.mode, judge=args.judge)
        if args.ray:  # the Ray hook: same files and report, tasks sharded with video affinity
            from mcr.eval.ray_runner import run_suite_ray

            summary = run_suite_ray(options, address=None if args.ray == "local" else args.ray, workers=args.workers,
                                    placement=args.placement, report=not args.no_report)
        else:
            summary = run_suite(options, report=not args.no_report)
    except (EvalInputError, JudgeError, CompareError, ResultsFileError, SinglePassUnavailable) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print(f"mcr: interrupted; finished tasks are in {out / 'results.jsonl'}; continue with "
              f"`mcr eval {args.suite} --out {out} --resume`", file=sys.stderr)
        return 130
    if not args.quiet:
        _print_summary(summary)
    for r in summary.records:  # errors are printed even with -q ("print nothing but errors")
        if r.status == "error":
            print(f"  error in {r.task_id}: {r.error}", file=sys.stderr)
    if any(r.status == "error" and r.error_type in _bad_input_names() for r in summary.records):
        return EXIT_BAD_INPUT  # a task's file, video or plugin is bad (its row says which); the others ran
    return EXIT_FAILED if any(r.status == "error" for r in summary.records) else EXIT_OK


def _bad_input_names() -> set[str]:
    """Names of the error types that mean bad input (mcr.cli's exit-2 errors and their subclasses)."""
    from mcr.cli import _bad_input_errors

    def names(kind: type) -> set[str]:
        return {kind.__name__}.union(*(names(sub) for sub in kind.__subclasses__()))

    return set().union(*(names(kind) for kind in _bad_input_errors() if kind is not FileNotFoundError))


def _print_summary(summary: Any) -> None:
    records = summary.records
    n = len(records)
    correct = sum(bool(r.correct) for r in records)
    print(f"{summary.out}: {n} tasks ({summary.ran} run now, {summary.skipped} already done), "
          f"accuracy {correct / n:.1%} ({correct}/{n})" if n else f"{summary.out}: no tasks")
    report = summary.report
    if report:
        for cat, c in report["by_category"].items():
            print(f"  {cat:<28} {c['accuracy']:6.1%}  ({c['correct']}/{c['n']})")
        ev = report["evidence_iou"]
        if ev["mean"] is not None:
            print(f"  evidence IoU {ev['mean']:.2f} (n={ev['n']}), {report['seconds_per_question']:.1f} s per question")
        print(f"report: {summary.out / 'report.md'}")
