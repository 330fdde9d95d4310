"""The verifier on its labelled set: false accepts and false rejects, asserted at their measured values.

The set (`tests/tools/data/verifier_set.json`) is real tool output on the truth
suite's videos with answers labelled by the suite's truth
(`benchmarks/make_verifier_set.py`); `benchmarks/bench_verifier.py` prints the
table recorded in `benchmarks/RESULTS.md` ("Verifier"). Measured on that set:
default 0/573 false accepts, 9/102 false rejects; the lexical check alone
(as it was) 145/573 and 28/102. Margins: a few cases either way.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "tools" / "data" / "verifier_set.json"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_verifier", ROOT / "benchmarks" / "bench_verifier.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data() -> dict:
    return json.loads(DATA.read_text())


LEXICAL = "evidence_support (lexical, all answers)"


@pytest.fixture(scope="module")
def table(data) -> dict:
    """Every verifier but the lexical baseline (its embeddings take ~1.5 min on 2 cores: the slow test has it)."""
    bench = _bench()
    decisions = bench.judge(data, {k: v for k, v in bench.verifiers().items() if k != LEXICAL})
    return {name: bench.rates(data["cases"], accepted) for name, accepted in decisions.items()}


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


def test_default_verifier_false_accepts_and_rejects(table):
    default = table["default"]
    assert default["to_reject"] == 573 and default["to_accept"] == 102
    assert default["false_accepts"] <= 4  # measured 0 (0.0%); goal <= 5%
    # measured 9 (8.8%): YOLO misses the photo's dog (4), ASR loses a name (2), scene memories hold no shape counts (3)
    assert default["false_rejects"] <= 10
    assert default["false_accept_rate"] <= 0.05 and default["false_reject_rate"] <= 0.10


def test_each_check_alone(table):
    assert 20 <= table["evidence_connection"]["false_accepts"] <= 32  # measured 26
    assert table["evidence_connection"]["false_rejects"] <= 10  # measured 9
    assert table["rival_options"]["false_rejects"] <= 2  # measured 0: it rejects only ties and better rivals
    assert table["rival_options"]["false_accepts"] >= 280  # measured 337: alone it lets unsupported answers by
    assert table["span_consistency"]["false_rejects"] == 0  # measured 0


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
    rates = bench.rates(fresh["cases"], bench.judge(fresh)["default"])
    assert rates["false_accept_rate"] <= 0.05 and rates["false_reject_rate"] <= 0.10
