"""Folding (mcr/folding.py): a fold digests older entries, keeps their ids, and the prompt stays in the window."""

from __future__ import annotations

import json

import pytest

from mcr.context import (
    Answer, Context, Fold, Instruction, Memory, Observation, TimeSpan, ToolCall, ToolResult, Verdict, VideoRef,
    parse_entry,
)
from mcr.folding import fit_context, fold_context, kept_ids
from mcr.window import ContextExhausted, PromptBudget, question_char_limit

VIDEO = VideoRef(path="/videos/long.mp4", duration=7200.0)


def words(text: str) -> int:
    """A token count for these tests: whitespace words (the real policies count with their tokenizer)."""
    return len(text.split())


def prompt_words(context: Context) -> int:
    return sum(words(part.get("text", "")) for m in context.render() for part in m["content"])


def opening(question: str = "What colour is the kite the narrator mentions?") -> Context:
    ctx = Context()
    ctx.append(Observation(span=TimeSpan(start=0, end=7200), video=VIDEO, text="Video long.mp4: 7200.0 s"))
    ctx.append(Instruction(text=question, video=VIDEO, refs=("e0",), options=("red", "blue")))
    return ctx


def grow(ctx: Context, n_results: int, scenes: int = 0) -> None:
    for k in range(n_results):
        call = ctx.append(ToolCall(step=k + 1, tool="look", arguments={"span": {"start": k, "end": k + 5}}))
        ctx.append(ToolResult(step=k + 1, tool="look", refs=(call.id,), span=TimeSpan(start=k * 10, end=k * 10 + 5),
                              summary=f"frames at {k * 10} s: a field, a {'red' if k % 2 else 'green'} kite " * 8))
    for k in range(scenes):
        ctx.append(Memory(step=n_results + 1, source="summarize", text=f"Scene {k}: measured: grey sky, a dog",
                          span=TimeSpan(start=k * 60, end=k * 60 + 60)))


def test_a_fold_renders_kept_entries_then_its_digest_then_what_follows():
    ctx = opening()
    grow(ctx, 6, scenes=40)
    fold = ctx.append(fold_context(ctx, step=8, max_tokens=400, count=words))
    after = ctx.append(ToolResult(step=9, tool="ground", summary="1 span: 40.0s-45.0s"))
    rendered = ctx.render()
    texts = [m["content"][-1]["text"] for m in rendered]
    assert texts[1].startswith("<observation") and texts[2].startswith("Question:")  # kept, verbatim, first order
    assert texts[3].startswith('<folded entries="52">') and texts[4] == after.render_text()
    assert len(rendered) == 5
    assert fold.kept == ("e0", "e1")
    # the run of 40 scene notes is one line with its ids and the span they cover
    assert "e14…e53: 40 notes from summarize, 0.0s-2400.0s" in fold.text
    # the prompt starts with the same messages as before the fold: a session reuses its cache up to there
    assert rendered[:3] == ctx.prefix(2).render()


def test_rendering_is_append_stable_from_the_latest_fold_on():
    ctx = opening()
    grow(ctx, 4)
    ctx.append(fold_context(ctx, step=5, max_tokens=300, count=words))
    full = Context.from_dicts(ctx.to_dicts())
    grow(full, 3)
    n = len(ctx)
    for k in range(n, len(full) + 1):
        shown = full.prefix(k).render()
        assert full.render()[: len(shown)] == shown
    assert json.dumps(full.render()).startswith(json.dumps(ctx.render())[:-1])


def test_citations_of_folded_entries_still_resolve():
    ctx = opening()
    grow(ctx, 5)
    ctx.append(fold_context(ctx, step=6, max_tokens=200, count=words))
    answer = ctx.propose_answer(step=7, text="red", option="A", evidence=("e3", "e5"))
    assert answer.refs == ("e3", "e5") and not answer.missing_refs
    assert answer.span == TimeSpan(start=0, end=15)


def test_the_digest_keeps_to_its_budget_and_keeps_verdicts_longest():
    ctx = opening()
    grow(ctx, 30)
    answer = ctx.append(Answer(step=31, text="blue", option="B", refs=("e3",)))
    ctx.append(Verdict(step=31, accepted=False, reason="the evidence does not back blue", refs=(answer.id,)))
    grow(ctx, 30)
    fold = fold_context(ctx, step=62, max_tokens=90, count=words)
    assert words(fold.text) <= 90
    assert f"{answer.id} answer option B" in fold.text and "rejected" in fold.text
    # what did not fit (the older run of results) is counted, with its ids; the newest run is kept
    assert fold.text.startswith("Older entries (30: 30 tool results, 0 notes; ids e3, e5, e7")
    assert "e65…e123: 30 look results" in fold.text


def test_a_second_fold_digests_the_entries_not_the_first_fold():
    ctx = opening()
    grow(ctx, 5)
    first = ctx.append(fold_context(ctx, step=6, max_tokens=400, count=words))
    grow(ctx, 5)
    second = fold_context(ctx, step=12, max_tokens=400, count=words)
    assert second.folded == first.folded + 10
    assert "folded" not in second.text and second.kept == ("e0", "e1")
    ctx.append(second)
    assert [m["content"][-1]["text"][:8] for m in ctx.render()][3] == "<folded "
    assert len(ctx.render()) == 4


def test_a_fold_round_trips_through_json_and_checkpoints():
    ctx = opening()
    grow(ctx, 3)
    fold = ctx.append(fold_context(ctx, step=4, max_tokens=200, count=words))
    again = Context.from_dicts(ctx.to_dicts())
    assert parse_entry(fold.model_dump(mode="json")) == fold
    assert again.render() == ctx.render() and again.last_fold == fold


def test_a_fold_must_keep_entries_that_exist():
    ctx = opening()
    with pytest.raises(ValueError, match="unknown entries"):
        ctx.append(Fold(text="x", kept=("e7",)))


def test_the_budget_note_is_kept_verbatim():
    ctx = opening()
    grow(ctx, 3)
    note = ctx.append(Memory(step=4, source="budget", text="Budget: this is the last step. Answer now."))
    assert kept_ids(ctx) == ("e0", "e1", note.id)


# --------------------------------------------------------------------------- #
# fit_context: fold when near, context_exhausted when even a fold cannot fit
# --------------------------------------------------------------------------- #


def measure(window: int, reserve: int = 50):
    return lambda c: PromptBudget(window=window, reserve=reserve, used=prompt_words(c))


def test_no_fold_while_the_prompt_is_far_from_the_window():
    ctx = opening()
    grow(ctx, 2)
    assert fit_context(ctx, step=3, measure=measure(10_000), count=words) is None


def test_every_prompt_stays_inside_the_window_as_the_episode_grows():
    ctx = opening()
    window, reserve = 1500, 100
    folds = 0
    for k in range(60):
        grow(ctx, 1, scenes=3)
        fold = fit_context(ctx, step=k + 2, measure=measure(window, reserve), count=words)
        if fold is not None:
            ctx.append(fold)
            folds += 1
        assert prompt_words(ctx) <= window - reserve
    assert folds >= 2
    assert len(ctx) > 250  # nothing was removed: every entry is still there to cite


def test_a_question_longer_than_the_window_is_context_exhausted():
    ctx = opening("why " * 2000)
    with pytest.raises(ContextExhausted, match=r"the question and its options 2,00\d: shorten the question"):
        fit_context(ctx, step=1, measure=measure(1500), count=words)


def test_the_task_question_limit_comes_from_the_window():
    assert question_char_limit(8192, fallback=100_000) == 8192
    assert question_char_limit(32768, fallback=100_000) == 32768
    assert question_char_limit(None, fallback=100_000) == 100_000


def test_the_opening_look_shows_a_long_video_at_a_fixed_frame_cost():
    from mcr.graph import opening_look

    long = opening_look(VideoRef(path="/v.mp4", duration=7200.0, fps=2.0))
    assert long.max_frames == 64
    short = VideoRef(path="/v.mp4", duration=24.0, fps=2.0)
    assert opening_look(short) is short  # 48 frames: unchanged, so short videos' cached prefixes stay valid
    capped = VideoRef(path="/v.mp4", duration=7200.0, fps=2.0, max_frames=16)
    assert opening_look(capped).max_frames == 16
