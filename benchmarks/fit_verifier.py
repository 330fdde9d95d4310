"""Fit the evidence scorer's weights and choose the verifier's thresholds from measured error rates.

Input: labelled sets of real tool output (``benchmarks/make_verifier_set.py``):
the truth suite's (``tests/tools/data/verifier_set.json``) and the natural
development suite's (``runs/verifier_natural.json``, made from
``../shared/suites/natural``). The reworded truth suite is never fitted on:
it is the held-out measure (``bench_verifier.py --set``).

For every multiple-choice case the verifier's own assessment
(:func:`mcr.tools.evidence.checks.assess`) gives the chosen option's signals
(:data:`mcr.tools.evidence.score.FEATURES`); the label is the case's
``accept``. A logistic regression (scikit-learn, balanced classes) turns the
signals into P(the evidence backs the option). Then, on the same cases:

* ``accept`` — the least P at which the text-only verifier's false accepts
  stay ≤ ``--max-false-accepts`` (the issue's 3%, with a margin);
* ``related`` — for a policy that sees pixels: the P under which the cited
  units hold "nothing related" to the answer, set at the 3rd percentile of
  the right answers' P (so it rejects ≤ 3% of them on this set);
* ``rival_margin`` — by how much a rival must be backed better before a
  sees-pixels answer is rejected (0.1 of probability).

Writes ``tools/evidence/weights.json`` (coefficients, intercept, thresholds,
and what was measured).

    python benchmarks/fit_verifier.py [--sets A.json B.json ...] [--out tools/evidence/weights.json] [--rows runs/rows.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SETS = [ROOT / "tests" / "tools" / "data" / "verifier_set.json", ROOT / "runs" / "verifier_natural.json"]
OUT = ROOT / "tools" / "evidence" / "weights.json"


def case_rows(data: dict[str, Any]) -> list[tuple[dict[str, float], bool, dict[str, Any]]]:
    """(features of the chosen option, accept?, case) for each multiple-choice case of a set."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_verifier import case_context

    from mcr.tools.evidence.checks import assess

    out = []
    judged: dict[tuple, Any] = {}  # one assessment per (task, citation): it scores every option at once
    for case in data["cases"]:
        if not case.get("options"):
            continue
        key = (case["task"], case["question"], tuple(case["refs"]))
        if key not in judged:
            ctx, answer = case_context(case, data["videos"][case["video"]])
            judged[key] = assess(answer, ctx)
        a = judged[key]
        if a is None:
            continue
        chosen = ord(case["option"]) - ord("A")
        out.append((a.supports[chosen].features, bool(case["accept"]), case))
    return out


def fit(rows: list[tuple[dict[str, float], bool, dict[str, Any]]], max_fa: float,
        max_fr_related: float = 0.03) -> dict[str, Any]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from mcr.tools.evidence.score import FEATURES

    x = np.array([[r[name] for name in FEATURES] for r, _, _ in rows])  # (N, F)
    y = np.array([label for _, label, _ in rows])  # (N,)
    model = LogisticRegression(class_weight="balanced", C=1.0, max_iter=2000).fit(x, y)
    p = model.predict_proba(x)[:, 1]  # (N,)
    negatives, positives = np.sort(p[~y]), np.sort(p[y])
    allowed = int(max_fa * len(negatives))  # false accepts allowed
    accept = float(negatives[-(allowed + 1)] + 1e-6) if len(negatives) > allowed else 0.5
    accept = max(accept, 0.05)
    related = float(np.percentile(positives, 100 * max_fr_related)) - 1e-6 if len(positives) else 0.1
    return {
        "coef": {name: round(float(c), 4) for name, c in zip(FEATURES, model.coef_[0])},
        "intercept": round(float(model.intercept_[0]), 4),
        "thresholds": {"accept": round(accept, 4), "rival_margin": 0.1, "related": round(max(0.0, related), 4)},
        "measured": {
            "cases": int(len(y)), "to_accept": int(y.sum()), "to_reject": int((~y).sum()),
            "false_accepts_at_accept": int((negatives >= accept).sum()),
            "false_rejects_at_accept": int((positives < accept).sum()),
            "false_accepts_at_related": int((negatives >= related).sum()),
            "false_rejects_at_related": int((positives < related).sum()),
        },
    }


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=Path, nargs="+", default=SETS)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--rows", type=Path, default=None,
                        help="cache the cases' features in this JSON file (refits then take seconds)")
    parser.add_argument("--max-false-accepts", type=float, default=0.02,
                        help="the text-only verifier's false-accept rate the accept threshold allows (goal 3%%)")
    args = parser.parse_args()
    rows = []
    used = []
    cached = json.loads(args.rows.read_text()) if args.rows is not None and args.rows.is_file() else {}
    for path in args.sets:
        name = str(path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path)
        if name in cached:
            rows += [tuple(r) for r in cached[name]]
            used.append(name)
            continue
        if not path.is_file():
            print(f"{path}: missing, skipped (make it with benchmarks/make_verifier_set.py)", file=sys.stderr)
            continue
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from bench_verifier import load_set

        made = case_rows(load_set(path))
        cached[name] = [(r, label, {"task": c["task"], "kind": c["kind"], "variant": c["variant"]}) for r, label, c in made]
        rows += made
        used.append(name)
    if args.rows is not None:
        args.rows.write_text(json.dumps(cached))
    if not rows:
        print("no labelled cases", file=sys.stderr)
        return 1
    weights = fit(rows, args.max_false_accepts)
    weights["measured"]["sets"] = used
    weights["measured"]["command"] = "python benchmarks/fit_verifier.py " + " ".join(sys.argv[1:])
    args.out.write_text(json.dumps(weights, indent=1) + "\n")
    print(json.dumps(weights, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
