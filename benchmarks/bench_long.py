"""Long videos: needles in a 10-120 minute haystack, answered by `mcr eval` (measured, not asserted).

For each length, makes a needle-in-a-haystack video with the long suite's
generator (`examples/make_long_suite.py`: 15 s scenes with a title and a
narrated sentence each; needles at seeded random depths: a spoken number, a
spoken weekday, a word shown once for 2 s, a photograph, a "when" question
with time-range options), writes a suite of the needle questions beside it,
and runs ``mcr eval SUITE --policy offline`` on it **in a fresh process**
(cold: nothing loaded, nothing cached, an empty index folder). It reports,
per length:

* accuracy on the needles, evidence IoU of the accepted answers, and the
  share right *with* evidence IoU >= 0.5;
* seconds to the first answer cold (process start to the first task's
  record: imports, model load, any index build, the first episode) and the
  median of the later questions' wall time (warm);
* frames decoded (`mcr.model.media.video.frames_decoded`, as `mcr eval`
  records it per task) as a share of the video's frames: first question, and
  the largest of the later ones;
* peak RSS of the eval process and its children (``wait4``'s ``ru_maxrss``);
* prompt tokens per policy step, the largest (from the traces'
  ``model_call`` events; when a prompt overflowed the window the
  ``SessionError`` names its length, and that is counted too);
* window overflows (tasks that ended in the window ``SessionError``, or with the
  stop reason ``context_exhausted``), other errors;
* index size on disk: the eval's ``MCR_INDEX_DIR`` is ``<label>/index-long<M>``,
  emptied before the run (blank when the code under test writes no index).

``--prebuild`` runs ``mcr index VIDEO`` first in its own fresh process; its
wall time and frames are added to the first answer's, its RSS compared.
``--label`` names the column (e.g. ``before`` for today's "perceive everything
into the context", ``after`` for the indexed, budgeted agent); ``--compare A B``
prints two labels' tables side by side as markdown. Each length can be cut
off after ``--timeout-min``; tasks without a record then count as not run.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_long.py --minutes 10 30 --label before
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_long.py --minutes 10 30 60 120 --label after
    .venv/bin/python benchmarks/bench_long.py --compare before after

Writes under ``--out`` (default runs/bench_long): ``media/`` (videos, reused
across runs while the generator's key matches), ``long<M>.yaml`` (the suites),
``<label>/long<M>/`` (the eval's results, traces, report) and
``<label>/summary.json`` (one row per length; rerunning a length replaces its row).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
from collections import Counter
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from long_questions import NEEDLE_KINDS  # noqa: E402
from make_long_suite import make_long_video, write_suite  # noqa: E402

from mcr.eval.records import TaskRecord, read_records  # noqa: E402
from mcr.traces.recorder import read_trace  # noqa: E402

WINDOW_ERROR = re.compile(r"prompt of (\d+) tokens exceeds the model's window of (\d+)")
IOU_GOAL = 0.5


def run_measured(cmd: list[str], index_dir: Path, timeout_s: float) -> dict:
    """Run `cmd` in a fresh process (its own session); wall time, exit status, output and peak RSS.

    Peak RSS is ``wait4``'s ``ru_maxrss`` of that process, which covers its
    children too. After `timeout_s` the whole session is killed.
    """
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MCR_INDEX_DIR": str(index_dir)}
    t0 = time.time()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    output: list[bytes] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)  # never blocks on a full pipe
    reader.start()
    timed_out = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.time() > t0 + timeout_s:
            os.killpg(proc.pid, signal.SIGKILL)  # the process's own group (start_new_session)
            timed_out = True
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.5)
    reader.join(timeout=10)
    text = b"".join(output).decode(errors="replace")
    return {"start": t0, "wall_s": time.time() - t0, "rc": os.waitstatus_to_exitcode(status), "timed_out": timed_out,
            "peak_rss_gb": usage.ru_maxrss / 2**20, "output": text}


def run_eval(suite: Path, out: Path, policy: str, timeout_s: float, extra: list[str], index_dir: Path) -> dict:
    """`mcr eval` in a fresh process; the per-video index (where the code has one) goes to `index_dir`."""
    if out.exists():
        shutil.rmtree(out)
    mcr = Path(sys.executable).with_name("mcr")
    run = run_measured([str(mcr), "eval", str(suite), "--policy", policy, "--out", str(out), "-q", *extra],
                       index_dir, timeout_s)
    run["output_tail"] = run.pop("output")[-2000:]
    return run


def run_prebuild(video: Path, index_dir: Path, timeout_s: float) -> dict:
    """`mcr index VIDEO --json` in a fresh process: wall time, peak RSS, and the frames its status counts."""
    mcr = Path(sys.executable).with_name("mcr")
    run = run_measured([str(mcr), "index", str(video), "--json"], index_dir, timeout_s)
    lines = run.pop("output").splitlines()
    status = next((json.loads(line) for line in reversed(lines) if line.startswith("{")), {})
    run.update(frames_decoded=int((status.get("counters") or {}).get("frames_decoded") or 0),
               complete=bool(status.get("stages")) and all(st.get("done") for st in status["stages"].values()), output_tail="\n".join(lines[-5:])[-600:])
    return run


def prompt_tokens_max(record: TaskRecord) -> tuple[int, bool]:
    """The largest prompt of any policy step of one task, and whether it overflowed the window."""
    largest = 0
    if record.trace_path and Path(record.trace_path).is_file():
        for event in read_trace(record.trace_path, quiet=True):
            if event.get("type") == "model_call":
                largest = max(largest, int((event.get("usage") or {}).get("prompt_tokens") or 0))
    match = WINDOW_ERROR.search(record.error or "")
    if match:
        largest = max(largest, int(match.group(1)))
    # A budgeted loop that still cannot fit its prompt ends with this stop reason instead of the error.
    return largest, match is not None or record.stop_reason == "context_exhausted"


def dir_bytes(path: Path | None) -> int | None:
    if path is None or not path.exists():
        return None
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def summarize_length(minutes: int, n_frames: int, n_tasks: int, records: list[TaskRecord], run: dict,
                     index_bytes: int | None, render_s: float) -> dict:
    records = sorted(records, key=lambda r: r.index)
    prompts = [prompt_tokens_max(r) for r in records]
    ious = [r.evidence_iou for r in records if r.evidence_iou is not None]
    first = records[0] if records else None
    later = records[1:]
    frames = [r.frames_decoded / n_frames for r in records]
    return {
        "minutes": minutes, "n_frames": n_frames, "tasks": n_tasks, "finished": len(records),
        "not_run": n_tasks - len(records), "render_s": round(render_s, 1),
        "correct": sum(bool(r.correct) for r in records),
        "accuracy": sum(bool(r.correct) for r in records) / n_tasks,
        "right_with_iou": sum(bool(r.correct) and (r.evidence_iou or 0.0) >= IOU_GOAL for r in records) / n_tasks,
        "evidence_iou_mean": statistics.fmean(ious) if ious else None,
        "window_overflows": sum(over for _, over in prompts),
        "errors": sum(r.status == "error" for r in records),
        "error_kinds": sorted({(r.error_type or "") for r in records if r.status == "error"}),
        "first_answer_cold_s": (first.finished_at - run["start"]) if first else None,
        "first_task_wall_s": first.wall_s if first else None,
        "later_median_s": statistics.median(r.wall_s for r in later) if later else None,
        "frames_first": frames[0] if frames else None,
        "frames_later_max": max(frames[1:]) if len(frames) > 1 else None,
        "frames_later_median": statistics.median(frames[1:]) if len(frames) > 1 else None,
        "frames_total": sum(r.frames_decoded for r in records) / n_frames,
        "peak_rss_gb": run["peak_rss_gb"],
        "prompt_tokens_max": max((p for p, _ in prompts), default=0),
        "index_bytes": index_bytes,
        "eval_wall_s": run["wall_s"], "eval_rc": run["rc"], "timed_out": run["timed_out"],
        "stop_reasons": [r.stop_reason or r.error_type for r in records],
    }


def bench_length(minutes: int, args: argparse.Namespace) -> dict:
    media = args.out / "media"
    video, facts, render_s = make_long_video(media, minutes, args.seed)
    suite = args.out / f"long{minutes}.yaml"
    budget = {"max_steps": args.max_steps, "max_tool_calls": args.max_tool_calls, "wall_time_s": args.wall_time_s}
    tasks = write_suite(suite, f"long{minutes}-needles", [video], NEEDLE_KINDS, budget=budget)
    index_dir = args.out / args.label / f"index-long{minutes}"
    if index_dir.exists():
        shutil.rmtree(index_dir)  # cold: the first question pays for the index
    run_out = args.out / args.label / f"long{minutes}"
    print(f"[{args.label}] {minutes} min: {len(tasks)} needle questions, eval in {run_out} ...", flush=True)
    prebuild = None
    if args.prebuild:
        prebuild = run_prebuild(media / f"{video.id}.mp4", index_dir, args.timeout_min * 60)
        print(f"  mcr index: {json.dumps(prebuild)}", flush=True)
    run = run_eval(suite, run_out, args.policy, args.timeout_min * 60, args.eval_arg, index_dir)
    records = read_records(run_out) if run_out.exists() else []
    row = summarize_length(minutes, facts["n_frames"], len(tasks), records, run, dir_bytes(index_dir), render_s)
    if prebuild is not None:  # the index build is part of the cold first answer
        row["prebuild"] = prebuild
        row["first_answer_cold_s"] = (row["first_answer_cold_s"] or 0.0) + prebuild["wall_s"]
        row["frames_first"] = (row["frames_first"] or 0.0) + prebuild["frames_decoded"] / facts["n_frames"]
        row["peak_rss_gb"] = max(row["peak_rss_gb"], prebuild["peak_rss_gb"])
    row["eval_output_tail"] = run["output_tail"][-600:]
    print(json.dumps({k: v for k, v in row.items() if k != "eval_output_tail"}), flush=True)
    return row


def _fmt(value, kind: str = "") -> str:
    if value is None:
        return "–"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    if kind == "pct2":
        return f"{100 * value:.2f}%"
    if kind == "s":
        return f"{value:.0f} s"
    if kind == "gb":
        return f"{value:.2f} GB"
    if kind == "mb":
        return f"{value / 1e6:.1f} MB"
    if kind == "iou":
        return f"{value:.2f}"
    return str(value)


ROWS = (  # (label, key, format)
    ("needles right", "accuracy", "pct"),
    ("right with evidence IoU ≥ 0.5", "right_with_iou", "pct"),
    ("evidence IoU (mean, accepted)", "evidence_iou_mean", "iou"),
    ("window overflows", "window_overflows", ""),
    ("other errors / not run", None, ""),
    ("how the questions ended", "ended", ""),
    ("first question, cold (to its record)", "first_answer_cold_s", "s"),
    ("later questions, median", "later_median_s", "s"),
    ("frames decoded, first question", "frames_first", "pct2"),
    ("frames decoded, later (max)", "frames_later_max", "pct2"),
    ("peak RSS", "peak_rss_gb", "gb"),
    ("prompt tokens per step (max)", "prompt_tokens_max", ""),
    ("index on disk", "index_bytes", "mb"),
)


def table(columns: list[tuple[str, dict]]) -> str:
    """Markdown: one row per figure, one column per (label, length)."""
    head = "| | " + " | ".join(f"{label} {row['minutes']} min" for label, row in columns) + " |"
    lines = [head, "|---" * (len(columns) + 1) + "|"]
    for name, key, kind in ROWS:
        cells = []
        for _, row in columns:
            if key is None:
                cells.append(f"{row['errors'] - row['window_overflows']} / {row['not_run']}")
            elif key == "ended":
                ended = Counter("answered" if r == "answered" else r or "?" for r in row["stop_reasons"])
                cells.append(", ".join(f"{n} {why}" for why, n in ended.most_common()))
            else:
                cells.append(_fmt(row.get(key), kind))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_summary(out: Path, label: str) -> dict:
    path = out / label / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else {"label": label, "rows": {}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, nargs="+", default=[10, 30, 60, 120], help="video lengths")
    parser.add_argument("--label", default="after", help="the column's name (default after)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--policy", default="offline")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_long")
    parser.add_argument("--timeout-min", type=float, default=60.0, help="cut one length's eval off after this long")
    parser.add_argument("--max-steps", type=int, default=8)
    parser.add_argument("--max-tool-calls", type=int, default=10)
    parser.add_argument("--wall-time-s", type=float, default=900.0, help="per question")
    parser.add_argument("--prebuild", action="store_true",
                        help="build the index with `mcr index` first (timed, and counted in the cold first answer)")
    parser.add_argument("--eval-arg", action="append", default=[], help="passed on to mcr eval (repeatable)")
    parser.add_argument("--compare", nargs="+", metavar="LABEL", help="print these labels' tables side by side")
    args = parser.parse_args(argv)
    if args.compare:
        summaries = [load_summary(args.out, label) for label in args.compare]
        lengths = sorted({int(m) for s in summaries for m in s["rows"]})
        print(table([(s["label"], s["rows"][str(m)]) for m in lengths for s in summaries if str(m) in s["rows"]]))
        return 0
    summary = load_summary(args.out, args.label)
    summary.update(machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
                   python=platform.python_version(), seed=args.seed, policy=args.policy)
    for minutes in args.minutes:
        summary["rows"][str(minutes)] = bench_length(minutes, args)
        (args.out / args.label).mkdir(parents=True, exist_ok=True)
        (args.out / args.label / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    rows = summary["rows"]
    print(table([(args.label, rows[k]) for k in sorted(rows, key=int)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
