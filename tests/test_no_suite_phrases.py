"""No rule, regex or word list in the policies or the evidence code names a phrase of a suite.

The suites measure how the agent reads questions it was not fitted to; a rule
that names their phrases makes the score meaningless (issue 21). This test
reads the suites' questions and options *at test time* — the bundled
``examples/suites/*/suite.yaml``, the reworded truth suite generated into a
temporary folder by ``examples/make_reworded.py``, and the natural development
suite where it has been generated (``/work/data/natural`` or ``$MCR_NATURAL_SUITE``)
— and checks every string literal of the code (docstrings and comments aside:
they explain, they do not decide):

* no literal holds three consecutive words of a suite sentence (two of them
  content words: "in the video" is English, not a suite's phrase);
* no word list (a collection of literals, a string of words to split, a
  regex alternation)
  holds three distinct content words of one suite sentence.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CODE = [ROOT / "policies", ROOT / "tools" / "evidence"]
NATURAL = Path(os.environ.get("MCR_NATURAL_SUITE", "/work/data/natural")) / "suite.yaml"
_WORD = re.compile(r"[a-z0-9]+")
# Function words carry no phrase of their own; a literal sharing only these with a sentence names nothing.
_FUNCTION = frozenset("""a an the of in on at to for and or but is are was were be been does do did what which who
whom whose when where why how this that these those it its with from by as into than then there their they them
he she his her him you your we our us not no yes""".split())


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _sentences(suite: Path) -> list[str]:
    tasks = yaml.safe_load(suite.read_text(encoding="utf-8")).get("tasks") or []
    out = []
    for t in tasks:
        out += re.split(r"(?<=[.?!])\s+", str(t.get("question", "")))
        out += [str(o) for o in t.get("options") or []]
    return [s for s in out if s.strip()]


@pytest.fixture(scope="module")
def suite_sentences(tmp_path_factory) -> list[str]:
    suites = sorted((ROOT / "examples" / "suites").glob("*/suite.yaml"))
    reworded = tmp_path_factory.mktemp("reworded")
    made = subprocess.run([sys.executable, str(ROOT / "examples" / "make_reworded.py"), str(reworded),
                           "--per-question", "3"], capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    suites.append(reworded / "suite.yaml")
    if NATURAL.is_file():
        suites.append(NATURAL)
    sentences = [s for suite in suites for s in _sentences(suite)]
    assert len(sentences) > 100
    return sentences


def literals(path: Path) -> list[tuple[int, list[str]]]:
    """(line, words, is a collection) of each string literal and each collection of them, docstrings aside."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    split = {id(node.func.value) for node in ast.walk(tree)  # "a b c".split(): a word list written as one string
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "split"
             and isinstance(node.func.value, ast.Constant)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) in split:
            out.append((node.lineno, _words(node.value), True))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            alternation = re.search(r"\w\|\w", node.value) is not None  # a regex's a|b|c is a word list too
            out.append((node.lineno, _words(node.value), alternation))
        elif isinstance(node, (ast.Set, ast.List, ast.Tuple)):
            items = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if len(items) > 1:
                out.append((node.lineno, _words(" ".join(items)), True))
    return out


def _content(word: str) -> bool:
    return word not in _FUNCTION and len(word) > 2


def _trigrams(words: list[str]) -> set[tuple[str, ...]]:
    """Runs of three words, two of them content words ("in the video" is English, not a suite's phrase)."""
    runs = (tuple(words[i : i + 3]) for i in range(len(words) - 2))
    return {t for t in runs if sum(map(_content, t)) >= 2}


def phrase_hits(words: list[str], sentences: list[str], word_list: bool = True) -> list[str]:
    """The suite sentences a literal names a phrase of (see the module docstring).

    ``word_list``: also count shared content words, for a literal that is a list of words
    (prose, e.g. a prompt, is held to the phrase rule only).
    """
    if len(words) < 3:
        return []
    have = set(words)
    trigrams = _trigrams(words)
    hits = []
    for sentence in sentences:
        said = _words(sentence)
        if trigrams & _trigrams(said):
            hits.append(sentence)
        elif word_list and len({w for w in said if _content(w)} & have) >= 3:
            hits.append(sentence)
    return hits


def _is_word_list(words: list[str], collection: bool) -> bool:
    """A collection of strings, or a string of words that the code splits into a list."""
    return collection


def test_the_policies_and_the_evidence_code_name_no_suite_phrase(suite_sentences):
    found = []
    for folder in CODE:
        for path in sorted(folder.rglob("*.py")):
            for line, words, collection in literals(path):
                hits = phrase_hits(words, suite_sentences, _is_word_list(words, collection))
                if hits:
                    found.append(f"{path.relative_to(ROOT)}:{line}: {' '.join(words)[:80]!r} ~ {hits[0]!r}")
    assert not found, "\n".join(found)


def test_the_check_finds_a_phrase_and_a_word_list(tmp_path):
    """It can fail: a regex with a sentence's words in order, and a word list drawn from one sentence."""
    sentences = ["How many scenes does the video have? A new scene starts at each cut."]
    code = tmp_path / "rule.py"
    code.write_text('"""Docstrings may quote: a new scene starts at each cut."""\n'
                    'import re\nWHEN = re.compile(r"a new scene starts")\nSTOP = {"new", "starts", "cut", "video"}\n'
                    'FINE = ("first", "last")\nALSO = frozenset("scene cut each new".split())\n'
                    'PROSE = "Look at each scene, then answer."\nREGEX = r"\\b(new|scene|cut)\\b"\n')
    flagged = sorted(line for line, words, collection in literals(code)
                     if phrase_hits(words, sentences, _is_word_list(words, collection)))
    assert flagged == [3, 4, 6, 8]
