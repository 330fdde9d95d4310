"""The fresh-machine check is part of the work: documented, scripted, and every extra's skip names its package.

`make test` failed twice in a row on a fresh machine (a float tolerance on
Intel, then Whisper's casing on an AMD EPYC). `.ci/fresh-machine` runs it in a
new clone, in a new folder, with an empty home and the Debian extras hidden;
a test that needs one of them must then skip and say which package to
install. This file checks the script and the README exist and agree, and
reads every skip in tests/ (AST, not grep) for that message.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: What a skip reason mentions -> the Debian package it must name.
EXTRAS = {"espeak": "espeak-ng", "chromium": "chromium", "darknet": "darknet", "wordnet": "wordnet-base"}


def _skip_reasons() -> list[tuple[str, str]]:
    """(file:line, text) of every skip/skipif/importorskip reason in tests/, f-strings by their literal parts."""
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name not in ("skip", "skipif", "importorskip"):
                continue
            texts = [kw.value for kw in node.keywords if kw.arg in ("reason", "msg")]
            if name == "skip" and node.args:
                texts.append(node.args[0])
            for text in texts:
                parts = [v.value for v in ast.walk(text) if isinstance(v, ast.Constant) and isinstance(v.value, str)]
                found.append((f"{path.relative_to(ROOT)}:{node.lineno}", "".join(parts)))
    return found


def test_every_skip_for_a_debian_extra_names_its_package():
    reasons = _skip_reasons()
    assert len(reasons) > 20  # the reader found the skips
    checked, bad = 0, []
    for where, text in reasons:
        for word, package in EXTRAS.items():
            if word in text.lower():
                checked += 1
                if package not in text:
                    bad.append(f"{where}: {text!r} does not name the Debian package {package}")
    assert checked >= 10 and not bad, bad


def test_the_fresh_machine_check_is_scripted_and_documented():
    script = ROOT / ".ci" / "fresh-machine"
    assert script.is_file() and os.access(script, os.X_OK)
    text = script.read_text()
    assert "make test" in text and "git clone" in text and "unshare" in text
    for package_path in ("/usr/share/darknet", "/usr/share/wordnet", "espeak-ng", "chromium"):
        assert package_path in text, package_path
    readme = (ROOT / "README.md").read_text()
    assert ".ci/fresh-machine" in readme
    for package in ("espeak-ng", "chromium", "darknet", "wordnet-base"):
        assert f"`{package}`" in readme, package
    ci = (ROOT / ".ci" / "run").read_text()
    for package in ("espeak-ng", "chromium", "darknet", "wordnet-base", "wordnet-sense-index"):
        assert package in ci


@pytest.mark.parametrize("package", sorted(EXTRAS.values()))
def test_the_script_hides_each_extra(package):
    """Each extra is hidden by the script (a data folder or a program bound over), so its skip is exercised."""
    text = (ROOT / ".ci" / "fresh-machine").read_text()
    hidden = {"espeak-ng": "espeak-ng", "chromium": "chromium", "darknet": "/usr/share/darknet",
              "wordnet-base": "/usr/share/wordnet"}[package]
    assert hidden in text
