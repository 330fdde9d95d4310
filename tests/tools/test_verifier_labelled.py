"""The verifier on its labelled sets: false accepts and false rejects, asserted at their measured values.

The sets are real tool output with answers labelled by a suite's truth
(`benchmarks/make_verifier_set.py`): the truth suite's
(`tests/tools/data/verifier_set.json`, which the scorer's weights were fitted
on together with the natural suite's) and the reworded truth suite's
(`verifier_reworded.json`: the same videos asked in other words by
`examples/make_reworded.py`; never fitted on). `benchmarks/bench_verifier.py`
prints the tables recorded in `benchmarks/RESULTS.md` ("Verifier"), per
policy kind: text-only (the option must be backed) and sees pixels (rejected
only on contradiction). Margins: a few cases either way of the measured figure.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "tools" / "data" / "verifier_set.json"
REWORDED = ROOT / "tests" / "tools" / "data" / "verifier_reworded.json"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_verifier", ROOT / "benchmarks" / "bench_verifier.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data() -> dict:
    return json.loads(DATA.read_text())


LEXICAL = "evidence_support (lexical, all answers)"


def _table(data: dict) -> dict:
    bench = _bench()
    decisions = bench.judge(data, {k: v for k, v in bench.verifiers().items() if k != LEXICAL})
    return {name: bench.rates(data["cases"], accepted) for name, accepted in decisions.items()}


@pytest.fixture(scope="module")
def table(data) -> dict:
    """Every verifier but the lexical baseline (its embeddings take ~1.5 min on 2 cores: the slow test has it)."""
    return _table(data)


def test_the_set_is_labelled_by_the_suite_truth(data):
    tasks = {t["name"]: t for t in yaml.safe_load((ROOT / data["suite"] / "suite.yaml").read_text())["tasks"]}
    cases = data["cases"]
    assert len(cases) >= 100 and sum(c["accept"] for c in cases) >= 50
    for c in cases:
        task = tasks[c["task"]]
        if task.get("options"):
            assert c["correct"] == (c["option"] == task["answer"]) and c["answer"] == task["options"][ord(c["option"]) - 65]
        assert c["accept"] == (c["correct"] and c["variant"] in ("tools", "summary"))
        assert all(ref in {e["id"] for e in data["videos"][c["video"]]} for ref in c["refs"])
    assert {c["variant"] for c in cases} == {"tools", "summary", "partial", "other"}
    assert "heldout" not in data["suite"]  # the held-apart suite is for a final figure only


@pytest.mark.slow  # the scorer over 675 cases: ~2 min on an idle 2-core machine, 6 on a loaded one
def test_default_verifier_false_accepts_and_rejects(table):
    text, seeing = table["default, text-only"], table["default, sees pixels"]
    assert text["to_reject"] == 573 and text["to_accept"] == 102
    # measured at ca34a93 (2026-12-07 22:09 UTC, `bench_verifier.py --no-lexical`): 5 (0.9%), 10 (9.8%) — the
    # false-reject goal (5%) is missed, RESULTS "Verifier by meaning" says by how much and why
    assert text["false_accepts"] <= 5 + 4 and text["false_rejects"] <= 10 + 4
    assert seeing["false_rejects"] <= 0 + 3  # measured 0; false accepts 267 (46.6%)
    assert seeing["false_accepts"] >= text["false_accepts"]  # it only rejects contradictions: more gets through


@pytest.mark.slow
def test_each_check_alone(table):
    assert table["rival_options alone, text-only"]["false_rejects"] <= 1 + 3  # measured 1: only better-backed rivals
    assert table["rival_options alone, text-only"]["false_accepts"] >= 280  # alone it lets unsupported answers by
    assert table["span_consistency alone, text-only"]["false_rejects"] <= 1


@pytest.mark.slow  # 2,025 cases
def test_the_reworded_suite_held_out():
    """The same videos asked in other words (never fitted on): the figures recorded in RESULTS."""
    bench = _bench()
    reworded = bench.load_set(REWORDED)
    assert len(reworded["cases"]) >= 600 and "truth" not in reworded["suite"].split("/")[-1:]
    table = _table(reworded)
    text, seeing = table["default, text-only"], table["default, sees pixels"]
    # measured at ca34a93 (2026-12-07 22:18 UTC): text-only 32 of 1,719 false accepts (1.9%), 65 of 306 false
    # rejects (21.2%); sees pixels 6 false rejects (2.0%)
    assert text["false_accepts"] <= 32 + 10 and text["false_rejects"] <= 65 + 10
    assert seeing["false_rejects"] <= 6 + 8


@pytest.mark.slow
def test_the_lexical_check_alone_was_worse(data):
    bench = _bench()
    lexical = bench.rates(data["cases"], bench.judge(data, {LEXICAL: bench.verifiers()[LEXICAL]})[LEXICAL])
    assert 125 <= lexical["false_accepts"] <= 165 and 22 <= lexical["false_rejects"] <= 34  # measured 145, 28


@pytest.mark.slow
def test_regenerating_the_set_from_the_media_gives_the_same_cases_and_figures(tmp_path, data):
    """Runs the real tools on the six videos again (~2-5 min on 2 cores) and compares."""
    spec = importlib.util.spec_from_file_location("make_verifier_set", ROOT / "benchmarks" / "make_verifier_set.py")
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    fresh = maker.build(tmp_path)
    key = lambda c: (c["task"], c["variant"], c["answer"], tuple(c["refs"]), c["accept"])  # noqa: E731
    assert [key(c) for c in fresh["cases"]] == [key(c) for c in data["cases"]]
    for vid, entries in data["videos"].items():
        old = [e.get("summary") for e in entries if e["kind"] == "tool_result"]
        assert [e.get("summary") for e in fresh["videos"][vid] if e["kind"] == "tool_result"] == old, (
            f"the tools now write something else for {vid}: regenerate the set "
            "(python benchmarks/make_verifier_set.py) and update the figures here and in RESULTS")
    bench = _bench()
    rates = bench.rates(fresh["cases"], bench.judge(fresh)["default, text-only"])
    assert rates["false_accepts"] <= 5 + 4 and rates["false_rejects"] <= 10 + 4  # as in the test above
