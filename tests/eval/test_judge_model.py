"""The model judge with the real offline model (SmolLM2-135M): slow, it loads the weights."""

from __future__ import annotations

import pytest

from mcr.eval.judges import resolve_judge

pytestmark = pytest.mark.slow


def test_offline_judge_scores_with_smollm2():
    judge = resolve_judge("offline")
    same = judge("What is sold at noon?", "fresh bread", "The market sells fresh bread.")
    assert same.score in (0.0, 1.0) and "logp yes=" in same.reason  # a real likelihood comparison
    assert judge("What is sold at noon?", "fresh bread", "").score == 0.0  # nothing to judge
    # A 135M judge is weak: what is asserted is that it runs and reads the answer, not its taste.
    other = judge("What is sold at noon?", "fresh bread", "Seven ships at night.")
    assert other.reason != same.reason
