"""The scorers on tables of tricky model outputs and span edge cases."""

from __future__ import annotations

import math

import pytest

from mcr.eval.judges import ContainsJudge, F1Judge, JudgeError, resolve_judge
from mcr.eval.scorers import (
    auto_scorer,
    extract_choice,
    parse_number,
    parse_span,
    recall_at,
    score_choice,
    score_exact,
    score_numeric,
    temporal_iou,
    union_iou,
)

OPTIONS = ["five", "six", "seven", "eight", "nine"]  # A..E: a case-insensitive [A-E] finds 'e' in "The"

CHOICES = [
    # (model output, expected letter or None)
    ("The answer is C.", "C"),
    ("THE ANSWER IS C", "C"),
    ("The correct answer is (D).", "D"),
    ("Answer: (b)", "B"),
    ("answer: b.", "B"),
    ("(B)", "B"),
    ("[E]", "E"),
    ("b", "B"),
    ("  c  ", "C"),
    ("C.", "C"),
    ("C. seven", "C"),
    ("(B) six", "B"),
    ("seven", "C"),
    ("Seven.", "C"),
    ("The keeper counts seven ships.", "C"),
    ("I think the keeper counts seven ships.", "C"),  # 'I' is the pronoun, not option I
    ("A red lighthouse stands on the cliff. Answer: D", "D"),  # 'A' is the article
    ("<think>A says five, B says six, and option D is eight.</think> The answer is C", "C"),
    ("Let me think. Option A is five. Option B is six. So the answer is (c).", "C"),
    ("I choose D", "D"),
    ("A is correct", "A"),
    ("A or C", None),
    ("A, B", None),
    ("(A) or (C)", None),
    ("The keeper counts seven ships, not five.", None),  # names two options: no single choice
    ("The answer is a lighthouse", None),  # lowercase 'a' followed by a word is an article
    ("seventy", None),  # no option 'seven' as a word
    ("", None),
    ("   ", None),
    (None, None),
    ("<think>maybe B</think>", "B"),  # nothing after the thought: the thought is all there is
]


@pytest.mark.parametrize("text,want", CHOICES)
def test_option_extractor_table(text, want):
    assert extract_choice(text, OPTIONS).letter == want


def test_option_extractor_says_which_rule():
    assert extract_choice("The answer is C.", OPTIONS).rule == "stated"
    assert extract_choice("A, B", OPTIONS).rule == "several_letters"
    assert extract_choice("", OPTIONS).rule == "empty"


def test_letters_outside_the_options_are_not_choices():
    assert extract_choice("F", ["x", "y"]).letter is None
    assert extract_choice("The answer is D", ["x", "y", "z"]).letter is None


def test_score_choice_prefers_the_option_field_and_falls_back_to_text():
    assert score_choice("C", "whatever", "C", OPTIONS)[0] == 1.0
    assert score_choice(None, "The answer is C.", "C", OPTIONS)[0] == 1.0
    assert score_choice("(b)", "seven", "C", OPTIONS)[0] == 0.0  # the option field wins
    assert score_choice(None, "seven", "seven", OPTIONS)[0] == 1.0  # truth given as option text


SPANS = [
    ("[6, 12]", (6.0, 12.0)),
    ("[12, 6]", (6.0, 12.0)),  # reversed
    ("(6.5, 9.4)", (6.5, 9.4)),
    ("from 6 to 12 seconds", (6.0, 12.0)),
    ("It happens between 6.5 and 9.4 s.", (6.5, 9.4)),
    ("6.0s-12.0s", (6.0, 12.0)),
    ("6.0 – 12.0", (6.0, 12.0)),
    ("between 0:06 and 0:12", (6.0, 12.0)),
    ("00:01:05 - 00:01:10", (65.0, 70.0)),
    ([3, 3], (3.0, 3.0)),  # empty span
    ([9, 2], (2.0, 9.0)),
    ("somewhere in the middle", None),
    ("", None),
    (None, None),
    ([1], None),
    (["a", "b"], None),
    ([float("nan"), 3], None),
    ([-1, 3], None),
]


@pytest.mark.parametrize("value,want", SPANS)
def test_parse_span_table(value, want):
    got = parse_span(value)
    assert got == (pytest.approx(want) if want else None)


IOUS = [
    ((6, 12), (6, 12), 1.0),
    ((12, 6), (6, 12), 1.0),  # reversed prediction
    ((6, 9), (6, 12), 0.5),
    ((0, 3), (6, 12), 0.0),  # disjoint
    ((0, 6), (6, 12), 0.0),  # touching
    ((3, 3), (0, 10), 0.0),  # empty prediction
    ((3, 3), (3, 3), 1.0),  # the same point
    (None, (6, 12), 0.0),  # unparseable
    ((0, 24), (6, 12), 0.25),  # the whole video
]


@pytest.mark.parametrize("pred,truth,want", IOUS)
def test_temporal_iou_edges(pred, truth, want):
    assert temporal_iou(pred, truth) == pytest.approx(want)


def test_union_iou_of_disjoint_cited_spans():
    assert union_iou([(6, 8), (10, 12)], (6, 12)) == pytest.approx(4 / 6)
    assert union_iou([(6, 9), (8, 12)], (6, 12)) == pytest.approx(1.0)  # overlapping spans merge
    assert union_iou([], (6, 12)) == 0.0


def test_recall_at_thresholds():
    figures = recall_at([1.0, 0.6, 0.4, 0.0])
    assert figures["mIoU"] == pytest.approx(0.5)
    assert (figures["R@0.3"], figures["R@0.5"], figures["R@0.7"]) == (0.75, 0.5, 0.25)
    assert recall_at([])["mIoU"] == 0.0


def test_numbers_in_digits_and_words():
    assert parse_number("At night the keeper counts seven ships.") == 7
    assert parse_number("It costs 1,250.5 coins") == 1250.5
    assert parse_number("Scene 2 has seven ships") == 7  # the last number is the answer
    assert parse_number("none") is None and parse_number("") is None
    assert score_numeric("seven", "7") == 1.0
    assert score_numeric("6", "7") == 0.0
    assert score_numeric("7.05", "7", tolerance=0.1) == 1.0
    assert score_numeric(None, "7") == 0.0


def test_exact_match_normalises_case_punctuation_and_articles():
    assert score_exact("The Red Lighthouse!", "red lighthouse") == 1.0
    assert score_exact("red lighthouses", "red lighthouse") == 0.0
    assert score_exact(None, "x") == 0.0


def test_auto_scorer():
    assert auto_scorer(["a", "b"], "A", None) == "choice"
    assert auto_scorer(None, None, (1, 2)) == "span"
    assert auto_scorer(None, "4", None) == "numeric"
    assert auto_scorer(None, "fresh bread", None) == "open"


def test_builtin_judges():
    contains, f1 = ContainsJudge(), F1Judge()
    assert contains("q", "fresh bread", "The market sells fresh bread.").score == 1.0
    assert contains("q", "fresh bread", "The market sells bread.").score == 0.0
    assert contains("q", "fresh bread", None).score == 0.0
    # what Whisper heard vs the script: a plural or third-person -s is not a different answer
    assert contains("q", "At night the keeper counts seven ships.", "At night the keeper count seven ship").score == 1.0
    assert contains("q", "the glass", "the glas").score == 0.0
    assert f1("q", "fresh bread", "fresh bread").score == pytest.approx(1.0)
    assert 0.0 < f1("q", "fresh bread for three coins", "bread").score < 0.5
    assert f1("q", "x", "").score == 0.0


def test_pluggable_judge_from_a_file(tmp_path):
    plugin = tmp_path / "my_judge.py"
    plugin.write_text("def judge(question, reference, answer):\n    return float(reference.lower() in (answer or '').lower())\n")
    judge = resolve_judge(f"{plugin}:judge")
    assert judge("q", "Bread", "fresh bread").score == 1.0
    assert judge("q", "Bread", "fish").score == 0.0


@pytest.mark.parametrize("name,fragment", [
    ("nonsense", "unknown judge"),
    ("/no/such/file.py:judge", "not found"),
    ("json:no_such_function", "no function"),
    ("no_such_module_xyz:judge", "cannot import"),
])
def test_bad_judge_names_say_what_to_do(name, fragment):
    with pytest.raises(JudgeError, match=fragment):
        resolve_judge(name)


def test_iou_is_never_nan():
    for pred in [(0, 0), (5, 5), (0, 1e-12)]:
        assert not math.isnan(temporal_iou(pred, (0, 0)))
