"""The ledger itself: cases count toward their section's total and render as a table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _conftest():
    spec = importlib.util.spec_from_file_location("rel_conftest", Path(__file__).with_name("conftest.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_cases_count_and_render():
    mod = _conftest()
    ledger = mod.Ledger()
    ledger.case("video", "zero | bytes", outcome="VideoError; exit 2", message="x.mp4 is empty\nmore")
    ledger.case("fault", "tool hangs", outcome="timeout entry")
    ledger.count("fuzz_examples", 2000)
    assert ledger.totals["inputs_tried"] == 1 and ledger.totals["faults_injected"] == 1
    page = mod._markdown(ledger, "make reliability-doc")
    assert "| fuzz examples | 2000 |" in page
    assert "zero \\| bytes" in page and "more" not in page
    try:
        ledger.count("nope")
    except KeyError as err:
        assert "unknown ledger total" in str(err)
    else:
        raise AssertionError("an unknown total must raise")


def test_temp_folders_are_named_alike_on_every_machine():
    import tempfile

    mod = _conftest()
    ledger = mod.Ledger()
    ledger.case("video", "x", outcome="y", message=f"{tempfile.gettempdir()}/pytest-of-u/pytest-7/clip0/a.mp4 is empty")
    assert ledger.cases[0].message == "<tmp>/clip0/a.mp4 is empty"
