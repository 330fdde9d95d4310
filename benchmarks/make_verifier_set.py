"""Build the verifier's labelled set from the truth suite: real tool outputs, answers labelled by the suite's truth.

For each video of ``examples/suites/truth`` the real tools run as the graph
runs them — ``transcribe`` (Whisper tiny.en), ``segment`` (PySceneDetect),
``summarize`` (OCR, pixels, YOLOv3-tiny; its Memory entries too) and ``look``
on every shot (colours, OCR, objects per frame) — and their entries are kept.
Then, for each task of the suite:

* **evidence variants** are chosen by the task's *truth* (its span and the
  kinds of evidence its metadata names: speech → the transcript, text/pixels →
  the looks over the truth span, shots → the shot list), never by the
  verifier: ``tools`` (raw tool results), ``summary`` (the scene memories or the
  summary over the truth span), ``partial`` (evidence over the truth span of
  the wrong kind: the looks for a speech question, the transcript for a
  picture question) and ``other`` (a scene memory and look of a scene that
  does not overlap the truth span: irrelevant evidence, which may well name
  one of the options — the failure the lexical check had);
* **answers**: every option (multiple choice), or for span questions the
  truth span, the span of another sentence or scene, and a shifted span.

A case's label is ``correct`` (the option is the task's answer; a span has
IoU ≥ 0.5 with the truth span) and ``accept``: what a verifier should do —
accept a correct answer cited with the ``tools`` or ``summary`` evidence,
reject everything else (a wrong answer; a right one cited with partial or
irrelevant evidence). Tasks whose fact no check reads (``said-before-title``: a
before/after relation between speech and on-screen text) are left out and
counted in the output.

    python benchmarks/make_verifier_set.py [--out tests/tools/data/verifier_set.json] [--reuse]
    python benchmarks/make_verifier_set.py --suite /work/data/natural --out runs/verifier_natural.json
    python benchmarks/make_verifier_set.py --suite runs/reworded --facts examples/suites/truth/facts.json \
        --videos-from tests/tools/data/verifier_set.json --out tests/tools/data/verifier_reworded.json

Takes 2-6 minutes on 2 cores, with the load (Whisper, OCR, YOLO and shapes over six videos).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "examples" / "suites" / "truth"
OUT = ROOT / "tests" / "tools" / "data" / "verifier_set.json"
SKIPPED_KINDS = {"said-before-title": "a before/after relation between speech and text no check reads"}


def run_tools(video_path: Path, workdir: Path) -> list[dict[str, Any]]:
    """The entries the real tools write for one video (a placeholder instruction is e0)."""
    from mcr.context import Context, Instruction, ToolCall, ToolResult, VideoRef
    from mcr.tools.asr import TranscribeTool
    from mcr.tools.base import ToolContext
    from mcr.tools.look import LookTool
    from mcr.tools.segment import SegmentTool
    from mcr.tools.summarize import SummarizeTool

    video = VideoRef(path=str(video_path.relative_to(ROOT) if video_path.is_relative_to(ROOT) else video_path))
    ctx = Context()
    ctx.append(Instruction(text="(the question)", video=video))
    tools = {t.name: t for t in (TranscribeTool(), SegmentTool(), SummarizeTool(), LookTool())}

    def call(name: str, args: dict[str, Any]) -> ToolResult:
        tool = tools[name]
        made = ctx.append(ToolCall(tool=name, arguments=args))
        tool_ctx = ToolContext(context=ctx, video=video.model_copy(update={"path": str(video_path)}), workdir=workdir)
        inp = tool.validate_input(args)
        out = tool.run(inp, tool_ctx)
        result = ctx.append(ToolResult(refs=(made.id,), tool=name, output=out.model_dump(mode="json"),
                                       summary=tool.summarize(out), span=tool.span_of(inp, out)))
        for extra in tool.entries(inp, out):
            ctx.append(extra.model_copy(update={"refs": (result.id, *extra.refs)}))
        return result

    call("transcribe", {})
    shots = call("segment", {"mode": "temporal"})
    call("summarize", {})
    for shot in shots.output["shots"]:
        call("look", {"span": shot["span"]})
    entries = ctx.to_dicts()
    for e in entries:  # keyframe paths point into a temporary folder: keep only the file name
        for shot in (e.get("output") or {}).get("shots") or []:
            if "keyframe" in shot:
                shot["keyframe"] = Path(shot["keyframe"]).name
    return entries


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def _iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    union = max(a[1], b[1]) - min(a[0], b[0])
    return _overlap(a, b) / union if union > 0 else 0.0


def evidence_variants(task: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Entry ids to cite, by variant, chosen from the task's truth span and evidence kinds."""
    truth = tuple(task["span"])
    kinds = set(task["metadata"]["evidence"])
    if kinds & {"objects", "motion"}:  # measured by look (detections, per-frame positions) like pixels
        kinds |= {"pixels"}
    results = [e for e in entries if e["kind"] == "tool_result"]
    first = {name: next(e["id"] for e in results if e["tool"] == name) for name in ("transcribe", "segment", "summarize")}
    looks = [e for e in results if e["tool"] == "look"]
    scenes = [e for e in entries if e["kind"] == "memory" and e["text"].startswith("Scene ")]
    span_of = lambda e: (e["span"]["start"], e["span"]["end"])  # noqa: E731
    inside = lambda e: _overlap(span_of(e), truth) > 0.25  # noqa: E731
    tools: list[str] = []
    if "speech" in kinds:
        tools.append(first["transcribe"])
    if kinds & {"text", "pixels"}:
        tools += [e["id"] for e in looks if inside(e)]
    if "shots" in kinds:
        tools.append(first["segment"])
    if kinds & {"text"} and "shots" in kinds and "pixels" not in kinds:  # when-title: where the title is read
        tools += [e["id"] for e in looks if inside(e)]
    whole = _overlap(truth, (0.0, 1e9)) and len([s for s in scenes if inside(s)]) > 2
    summary = [first["summarize"]] if "shots" in kinds or whole else [e["id"] for e in scenes if inside(e)]
    variants = {"tools": list(dict.fromkeys(tools)), "summary": summary}
    # Partial: evidence over the truth span, but not of the kind the question needs.
    partial = [e["id"] for e in looks if inside(e)] if kinds == {"speech"} else (
        [first["transcribe"]] if "speech" not in kinds and kinds != {"shots"} else [])
    if partial:
        variants["partial"] = partial
    others = [s for s in scenes if not inside(s)]
    if others:
        other = others[0]
        look = next((e["id"] for e in looks if _overlap(span_of(e), span_of(other)) > 0.25), None)
        variants["other"] = [other["id"]] + ([look] if look else [])
    return variants


def kind_of(task: dict[str, Any]) -> str:
    """The question kind: the truth suite's ``metadata.kind``, else the suite's category (the natural suite)."""
    return str(task["metadata"].get("kind") or task.get("category") or "")


def cases_for(task: dict[str, Any], entries: list[dict[str, Any]], facts: dict[str, Any]) -> list[dict[str, Any]]:
    variants = evidence_variants(task, entries)
    out = []
    base = {"task": task["name"], "kind": kind_of(task), "video": task["metadata"]["video_id"]}
    if task.get("options"):
        for i, option in enumerate(task["options"]):
            letter = "ABCDEFGH"[i]
            correct = letter == task["answer"]
            for variant, refs in variants.items():
                out.append({**base, "variant": variant, "answer": option, "option": letter, "refs": refs,
                            "correct": correct, "accept": correct and variant in ("tools", "summary")})
        return out
    truth = tuple(task["span"])
    video = next(v for v in facts["videos"] if v["id"] == task["metadata"]["video_id"])
    spans = [(s["narration"]["start"], s["narration"]["end"]) for s in video["scenes"] if s["narration"]]
    spans += [(s["start"], s["end"]) for s in video["scenes"]]
    wrong = next(s for s in spans if _iou(s, truth) < 0.2)
    shifted = (round(truth[0] + 0.6 * (truth[1] - truth[0]), 1), round(truth[1] + 0.6 * (truth[1] - truth[0]), 1))
    for span in (truth, wrong, shifted):
        correct = _iou(span, truth) >= 0.5
        for variant in ("tools", "summary"):
            out.append({**base, "variant": variant, "answer": f"{span[0]:.1f} - {span[1]:.1f} s", "option": None,
                        "refs": variants[variant], "correct": correct, "accept": correct})
    return out


def build(workdir: Path, videos: dict[str, list[dict[str, Any]]] | None = None, suite_dir: Path = SUITE,
          facts_path: Path | None = None) -> dict[str, Any]:
    """The set; `videos` reuses tool entries made before (only the cases are rebuilt)."""
    suite = yaml.safe_load((suite_dir / "suite.yaml").read_text())
    facts = json.loads((facts_path or suite_dir / "facts.json").read_text())
    if videos is None:
        videos = {}
        for v in facts["videos"]:
            t0 = time.perf_counter()
            videos[v["id"]] = run_tools(suite_dir / v["file"], workdir)
            print(f"{v['id']}: tools ran in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    cases, skipped = [], {}
    for task in suite["tasks"]:
        kind = kind_of(task)
        if kind in SKIPPED_KINDS:
            skipped[kind] = skipped.get(kind, 0) + 1
            continue
        for case in cases_for(task, videos[task["metadata"]["video_id"]], facts):
            tasks = {t["name"]: t for t in suite["tasks"]}
            case.update(question=tasks[case["task"]]["question"], options=tasks[case["task"]].get("options"),
                        truth_span=tasks[case["task"]]["span"])
            cases.append(case)
    where = str(suite_dir.relative_to(ROOT)) if suite_dir.is_relative_to(ROOT) else suite_dir.name
    return {"generator": "benchmarks/make_verifier_set.py", "suite": where,
            "skipped": {k: f"{n} task(s): {SKIPPED_KINDS[k]}" for k, n in skipped.items()},
            "videos": videos, "cases": cases}


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--suite", type=Path, default=SUITE,
                        help="the suite folder (the held-apart one only for a final figure, never to tune)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the tool entries already in --out and rebuild only the cases (seconds)")
    parser.add_argument("--facts", type=Path, default=None,
                        help="the suite's facts.json (default: in --suite; a reworded suite uses the truth suite's)")
    parser.add_argument("--videos-from", type=Path, default=None,
                        help="take the tool entries from this set (a reworded suite asks about the same videos)")
    args = parser.parse_args()
    videos = json.loads(args.out.read_text())["videos"] if args.reuse else None
    if args.videos_from is not None:
        videos = json.loads(args.videos_from.read_text())["videos"]
    with tempfile.TemporaryDirectory(prefix="verifier_set-") as tmp:
        data = build(Path(tmp), videos, args.suite.resolve(), args.facts)
    if args.videos_from is not None:  # the tool entries stay in that set: name it instead of copying them
        data["videos"] = {}
        data["videos_from"] = str(args.videos_from.resolve().relative_to(ROOT))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=None, separators=(",", ":")) + "\n")
    n = len(data["cases"])
    print(f"{n} cases ({sum(c['accept'] for c in data['cases'])} to accept) -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
