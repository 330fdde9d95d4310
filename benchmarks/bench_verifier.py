"""False accepts and false rejects of the verifier on its labelled set, for the default verifier and each check.

The set (`tests/tools/data/verifier_set.json`, made by
`benchmarks/make_verifier_set.py`) holds real tool outputs on the truth
suite's videos and (question, cited evidence, answer, accept?) cases labelled
by the suite's truth. Each case becomes a context — the question, the tools'
entries, the proposed answer — and is judged by:

* ``default`` — `build_verifier()` as the verify node builds it (built-in checks + evidence checks), for a
  text-only policy and for one that sees pixels (``sees_pixels``: the checks reject only contradictions);
* each evidence check alone (with the built-in checks, which never reject these cases), per policy kind.

False-accept rate = accepted / cases to reject; false-reject rate = rejected /
cases to accept. Also prints the word-similarity measurement behind
``MIN_WORD``: each narrated word's similarity to what Whisper heard, against
the best similarity of the pool's other words (names, items, places, counts).

    python benchmarks/bench_verifier.py [--set PATH] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SET = ROOT / "tests" / "tools" / "data" / "verifier_set.json"
CHECKS = ("evidence_connection", "rival_options", "span_consistency", "evidence_support")


_PARSED: dict[int, list[Any]] = {}


def _parsed(entries: list[dict[str, Any]]) -> list[Any]:
    """A video's tool entries parsed once and shared by its cases' contexts (entries are immutable), so the
    verifier's per-citation assessment cache serves every option of a question."""
    key = id(entries)
    if key not in _PARSED:
        from mcr.context import parse_entry

        _PARSED[key] = [entries, *[parse_entry(e) for e in entries[1:]]]  # holds `entries`: its id stays unique
    return _PARSED[key][1:]


def case_context(case: dict[str, Any], entries: list[dict[str, Any]]):
    """The context a case is judged in, and its proposed answer (appended last)."""
    from mcr.context import Context, Instruction, VideoRef, parse_entry

    first = parse_entry(entries[0])
    video = first.video if isinstance(first, Instruction) else VideoRef(path=case["video"])
    ctx = Context([Instruction(id="e0", text=case["question"], options=tuple(case["options"]) if case["options"] else None,
                               video=video), *_parsed(entries)])
    answer = ctx.append(ctx.propose_answer(step=1, text=case["answer"], option=case["option"], evidence=case["refs"]))
    return ctx, answer


def load_set(path: Path) -> dict[str, Any]:
    """A labelled set; one made with ``--videos-from`` takes its tool entries from the set it names."""
    data = json.loads(Path(path).read_text())
    if data.get("videos_from"):
        data["videos"] = json.loads((ROOT / data["videos_from"]).read_text())["videos"]
    return data


def verifiers() -> dict[str, Any]:
    """The default verifier and each evidence check alone, for a text-only policy and one that sees pixels."""
    from mcr.tools.evidence import build_verifier, evidence_support
    from mcr.verify import Verifier

    out = {}
    for kind, pixels in (("text-only", False), ("sees pixels", True)):
        full = build_verifier(sees_pixels=pixels)
        out[f"default, {kind}"] = full
        for name in CHECKS:
            if name == "evidence_support" and pixels:
                continue  # the same check for both kinds
            alone = Verifier()
            alone.add(name, full.checks[name])
            out[f"{name} alone, {kind}"] = alone
    before = Verifier()  # the lexical check as it was before the connection checks (it judged every answer)
    before.add("evidence_support", evidence_support())
    out["evidence_support (lexical, all answers)"] = before
    return out


def judge(data: dict[str, Any], which: dict[str, Any] | None = None) -> dict[str, list[bool]]:
    """Each verifier's accept/reject per case, in case order."""
    which = which or verifiers()
    decisions: dict[str, list[bool]] = {name: [] for name in which}
    for case in data["cases"]:
        ctx, answer = case_context(case, data["videos"][case["video"]])
        for name, verifier in which.items():
            decisions[name].append(verifier.verify(answer, ctx).accepted)
    return decisions


def rates(cases: list[dict[str, Any]], accepted: list[bool]) -> dict[str, Any]:
    neg = [a for c, a in zip(cases, accepted) if not c["accept"]]
    pos = [a for c, a in zip(cases, accepted) if c["accept"]]
    fa, fr = sum(neg), sum(1 for a in pos if not a)
    return {"false_accepts": fa, "to_reject": len(neg), "false_accept_rate": round(fa / max(1, len(neg)), 4),
            "false_rejects": fr, "to_accept": len(pos), "false_reject_rate": round(fr / max(1, len(pos)), 4)}


def word_measurement(data: dict[str, Any]) -> dict[str, Any]:
    """Similarity of each narrated word to the transcript vs the best other pool word (see the module docstring)."""
    sys.path.insert(0, str(ROOT / "examples"))
    from suite_plan import COUNT_WORDS, ITEMS, NAMES, PLACES

    from mcr.tools.evidence.match import best_similarity, tokens

    facts = json.loads((ROOT / data.get("suite", "examples/suites/truth") / "facts.json").read_text())
    half = int(facts.get("seed", 0)) % 2  # the suite's pools (suite_plan: a seed's parity picks the half)
    pools = {"name": NAMES[half], "item": ITEMS[half], "place": PLACES[half], "count": COUNT_WORDS}
    truth, rival, wins = [], [], 0
    for v in facts["videos"]:
        tr = next(e for e in data["videos"][v["id"]] if e["kind"] == "tool_result" and e["tool"] == "transcribe")
        for s in v["scenes"]:
            n = s["narration"]
            if not n:
                continue
            heard = tokens(" ".join(g["text"] for g in tr["output"]["segments"]
                                    if g["span"]["end"] > n["start"] and g["span"]["start"] < n["end"]))
            for slot, pool in pools.items():
                t = best_similarity(n[slot].lower(), heard)[0]
                r = max(best_similarity(w.lower(), heard)[0] for w in pool if w.lower() != n[slot].lower())
                truth.append(t)
                rival.append(r)
                wins += t > r
    q = lambda xs, p: sorted(xs)[min(len(xs) - 1, int(p * len(xs)))]  # noqa: E731
    return {"words": len(truth), "truth_min": round(min(truth), 2), "truth_p10": round(q(truth, 0.1), 2),
            "truth_median": round(q(truth, 0.5), 2), "rival_median": round(q(rival, 0.5), 2),
            "rival_p90": round(q(rival, 0.9), 2), "truth_beats_rival": f"{wins}/{len(truth)}"}


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=SET)
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    parser.add_argument("--no-lexical", action="store_true", help="skip the old lexical baseline (its embeddings are slow)")
    args = parser.parse_args()
    data = load_set(args.set)
    cases = data["cases"]
    which = verifiers()
    if args.no_lexical:
        which.pop("evidence_support (lexical, all answers)")
    decisions = judge(data, which)
    table = {name: rates(cases, accepted) for name, accepted in decisions.items()}
    truth_like = (ROOT / str(data.get("suite", "")) / "facts.json").is_file() and not data.get("videos_from")
    words = word_measurement(data) if truth_like else None  # the truth suite's narrated-word pools only
    errors = Counter()
    for c, a in zip(cases, decisions["default, text-only"]):
        if a != c["accept"]:
            errors[("false accept" if a else "false reject", c["kind"], c["variant"])] += 1
    if args.json:
        print(json.dumps({"table": table, "words": words, "cases": len(cases),
                          "errors": [[*k, n] for k, n in sorted(errors.items())]}))
        return 0
    print(f"{len(cases)} cases ({sum(c['accept'] for c in cases)} to accept), skipped: {data.get('skipped')}")
    print("| verifier | false accepts | false-accept rate | false rejects | false-reject rate |")
    print("|---|---|---|---|---|")
    for name, r in table.items():
        print(f"| {name} | {r['false_accepts']}/{r['to_reject']} | {r['false_accept_rate']:.1%} | "
              f"{r['false_rejects']}/{r['to_accept']} | {r['false_reject_rate']:.1%} |")
    print("\ndefault verifier's errors by kind and evidence variant:")
    for (what, kind, variant), n in sorted(errors.items()):
        print(f"  {what}: {kind} / {variant}: {n}")
    print("\nword similarity (narrated word vs transcript):", json.dumps(words))
    return 0


if __name__ == "__main__":
    sys.exit(main())
