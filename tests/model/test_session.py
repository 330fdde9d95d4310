"""ModelSession on a tiny Qwen3-VL: cache reuse is exact, forks are isolated, prefixes persist.

The episode: a video in turn 1, text in turn 2, new frames (a span of the
video, as a zoom tool would add) in turn 3, text in turn 4. At every turn the
session that reuses its cache must give the logits of a fresh full prefill.
"""

from __future__ import annotations

import pytest
import torch

from mcr.context import Context, Instruction, Observation, Thought, TimeSpan, ToolCall, ToolResult, VideoRef
from mcr.model.runtime.loader import load_model
from mcr.model.runtime.prompt import RenderError
from mcr.model.runtime.session import ModelSession, SessionError
from mcr.model.runtime.tiny import save_tiny_qwen3vl

TOOLS = [{"type": "function", "function": {"name": "zoom", "description": "Look closer.", "parameters": {"type": "object"}}}]
SMALL = dict(fps=2.0, min_pixels=64 * 64, max_pixels=96 * 64)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_model(save_tiny_qwen3vl(tmp_path_factory.mktemp("tiny")), dtype="float32")


def episode(video) -> list[Context]:
    """The context after each of four turns."""
    ref = VideoRef(path=str(video), **SMALL)
    ctx = Context()
    ctx.append(Instruction(text="What happens?", video=ref))
    ctx.append(Observation(text="overview", video=ref, span=TimeSpan(start=0.0, end=2.0)))
    turns = [ctx.prefix(len(ctx))]
    ctx.append(Thought(text="Zoom into the middle."))
    call = ctx.append(ToolCall(tool="zoom", arguments={"start": 0.5, "end": 1.5}))
    ctx.append(ToolResult(tool="zoom", output={"frames": 2}, refs=(call.id,)))
    turns.append(ctx.prefix(len(ctx)))
    ctx.append(Observation(text="zoomed", video=ref, span=TimeSpan(start=0.5, end=1.5)))
    turns.append(ctx.prefix(len(ctx)))
    ctx.append(Thought(text="The brightness ramps up."))
    turns.append(ctx.prefix(len(ctx)))
    return turns


def test_reuse_equals_full_reprefill_every_turn(tiny, tiny_video):
    reuse, fresh = ModelSession(tiny), ModelSession(tiny)
    for turn, ctx in enumerate(episode(tiny_video), 1):
        a = reuse.next_token_logits(ctx.render(), TOOLS)
        usage = reuse.last_usage
        fresh.reset()
        b = fresh.next_token_logits(ctx.render(), TOOLS)
        assert (a - b).abs().max().item() <= 1e-4, turn
        assert usage.prompt_tokens == fresh.last_usage.prompt_tokens
        if turn > 1:
            assert usage.reused_tokens > 0
            assert usage.prefilled_tokens < usage.prompt_tokens // 2
        assert usage.cache_bytes > 0
    prompt = reuse.render(episode(tiny_video)[2].render(), TOOLS)
    assert len(prompt.media) == 2 and prompt.media[1][1].kind == "video"


def test_positions_match_transformers_own_full_prefill(tiny, tiny_video):
    """Our delta positions must equal what transformers computes over the whole sequence."""
    ctx = episode(tiny_video)[-1]
    session = ModelSession(tiny)
    for turn in episode(tiny_video):
        ours = session.next_token_logits(turn.render(), TOOLS)
    prompt = session.render(ctx.render(), TOOLS)
    videos = [item for _, item in prompt.media]
    model = tiny.model
    model.model.rope_deltas = None
    with torch.inference_mode():
        out = model(
            input_ids=torch.tensor([prompt.ids]),
            mm_token_type_ids=torch.tensor([prompt.mm_types]),
            pixel_values_videos=torch.cat([v.pixel_values() for v in videos]),
            video_grid_thw=torch.cat([v.grid_thw for v in videos]),
        )
    assert (out.logits[0, -1] - ours).abs().max().item() <= 1e-4


def test_greedy_generation_identical_with_and_without_reuse(tiny, tiny_video):
    reuse, fresh = ModelSession(tiny, max_new_tokens=12), ModelSession(tiny, max_new_tokens=12)
    for ctx in episode(tiny_video):
        a = reuse.generate(ctx.render(), TOOLS)
        fresh.reset()
        b = fresh.generate(ctx.render(), TOOLS)
        assert a.token_ids == b.token_ids and a.text == b.text
        assert a.usage.generated_tokens == len(a.token_ids)


def test_fork_shares_prefix_and_never_changes_parent(tiny, tiny_video):
    turns = episode(tiny_video)
    parent = ModelSession(tiny, max_new_tokens=8)
    before = parent.next_token_logits(turns[1].render(), TOOLS)
    cached = parent.cache.get_seq_length()
    ptr = parent.cache.layers[0].keys.data_ptr()
    child = parent.fork()
    side = child.generate(turns[2].render(), TOOLS)  # new frames + decoding on the fork
    assert child.last_usage.reused_tokens > 0 and side.usage.generated_tokens > 0
    assert parent.cache.get_seq_length() == cached
    assert parent.cache.layers[0].keys.data_ptr() == ptr
    again = parent.next_token_logits(turns[1].render(), TOOLS)
    assert parent.last_usage.prefilled_tokens == 1  # nothing new: only the last token re-run
    # A session that never forked, making the same calls, gives the same bits.
    twin = ModelSession(tiny)
    assert torch.equal(twin.next_token_logits(turns[1].render(), TOOLS), before)
    assert torch.equal(twin.next_token_logits(turns[1].render(), TOOLS), again)


def test_same_shaped_videos_never_share_cached_tokens(tiny, tiny_video, make_video):
    other = make_video("other.mp4", n_frames=24, fps=12, size=(64, 48))
    session = ModelSession(tiny)
    session.next_token_logits(episode(tiny_video)[0].render(), TOOLS)
    a = session.render(episode(tiny_video)[0].render(), TOOLS)
    b = session.render(episode(other)[0].render(), TOOLS)
    first = a.media[0][0]
    assert a.media[0][1].key != b.media[0][1].key
    session.next_token_logits(episode(other)[0].render(), TOOLS)
    assert session.last_usage.reused_tokens <= first  # reuse stops before the video
    fresh = ModelSession(tiny)
    assert torch.allclose(
        session.next_token_logits(episode(other)[0].render(), TOOLS),
        fresh.next_token_logits(episode(other)[0].render(), TOOLS),
        atol=1e-4,
    )


def video_first(video, question: str) -> Context:
    ref = VideoRef(path=str(video), **SMALL)
    ctx = Context()
    ctx.append(Observation(text="the video", video=ref))
    ctx.append(Instruction(text=question))
    return ctx


def test_saved_video_prefix_skips_the_video_for_a_second_question(tiny, tiny_video, tmp_path):
    first = ModelSession(tiny, prefix_dir=tmp_path)
    first.next_token_logits(video_first(tiny_video, "What happens?").render(), TOOLS)
    path = first.save_prefix()
    assert path.is_file() and path.suffix == ".safetensors"
    video_tokens = sum(len(item.token_ids) for _, item in first.render(video_first(tiny_video, "x").render(), TOOLS).media)

    second = ModelSession(load_model(tiny.source, dtype="float32"), prefix_dir=tmp_path, use_saved_prefixes=True)
    question = video_first(tiny_video, "What colour is it at the end?").render()
    warm = second.next_token_logits(question, TOOLS)
    assert second.last_usage.prefix_loaded_tokens > video_tokens
    assert second.last_usage.prefilled_tokens < second.last_usage.prompt_tokens - video_tokens
    # The prompt was rendered from the saved media layout: the video was never decoded.
    item = second.render(question, TOOLS).media[0][1]
    assert item._pixels is None
    cold = ModelSession(tiny).next_token_logits(question, TOOLS)
    assert (warm - cold).abs().max().item() <= 1e-4


def test_prefix_of_another_model_or_video_is_not_used(tiny, tiny_video, make_video, tmp_path):
    ModelSession(tiny, prefix_dir=tmp_path).next_token_logits(video_first(tiny_video, "q").render(), TOOLS)
    saver = ModelSession(tiny, prefix_dir=tmp_path)
    saver.next_token_logits(video_first(tiny_video, "q").render(), TOOLS)
    saver.save_prefix()
    other = make_video("other.mp4", n_frames=24, fps=12, size=(64, 48))
    reader = ModelSession(tiny, prefix_dir=tmp_path, use_saved_prefixes=True)
    reader.next_token_logits(video_first(other, "q").render(), TOOLS)
    assert reader.last_usage.prefix_loaded_tokens == 0


def test_save_prefix_needs_a_complete_message(tiny, tmp_path):
    with pytest.raises(SessionError, match="nothing to save"):
        ModelSession(tiny, prefix_dir=tmp_path).save_prefix()
    session = ModelSession(tiny, prefix_dir=tmp_path)
    session.next_token_logits([{"role": "user", "content": "hi"}])
    with pytest.raises(SessionError, match="holds"):
        session.save_prefix(upto=10_000)


def test_corrupt_prefix_file_is_reported(tiny, tmp_path):
    from safetensors.torch import save_file

    session = ModelSession(tiny, prefix_dir=tmp_path, use_saved_prefixes=True)
    messages = [{"role": "user", "content": "hello"}]
    saver = ModelSession(tiny, prefix_dir=tmp_path)
    saver.next_token_logits(messages)
    path = saver.save_prefix()
    save_file({"x": torch.zeros(1)}, str(path), metadata={"format": "something-else"})
    with pytest.raises(ValueError, match="not a saved prefix"):
        session.next_token_logits(messages + [{"role": "assistant", "content": "hi"}])


def test_missing_media_file_is_a_clear_error(tiny, tmp_path):
    ctx = video_first(tmp_path / "gone.mp4", "q")
    with pytest.raises(RenderError, match="gone.mp4"):
        ModelSession(tiny).next_token_logits(ctx.render(), TOOLS)


def test_prompt_longer_than_the_window_is_refused(tmp_path):
    small = load_model(save_tiny_qwen3vl(tmp_path / "m"), dtype="float32")
    small.model.config.text_config.max_position_embeddings = 64
    with pytest.raises(SessionError, match="exceeds the model's window of 64"):
        ModelSession(small).next_token_logits([{"role": "user", "content": "x" * 200}])


def test_sampling_is_seeded(tiny):
    messages = [{"role": "user", "content": "Say something."}]
    a = ModelSession(tiny, temperature=1.0, top_p=0.9, seed=3).generate(messages, max_new_tokens=10)
    b = ModelSession(tiny, temperature=1.0, top_p=0.9, seed=3).generate(messages, max_new_tokens=10)
    c = ModelSession(tiny, temperature=1.0, top_p=0.9, seed=4).generate(messages, max_new_tokens=10)
    assert a.token_ids == b.token_ids
    assert a.token_ids != c.token_ids


def test_score_continuations_equals_teacher_forcing_and_keeps_the_cache(tiny):
    messages = [{"role": "user", "content": "Pick one."}]
    session = ModelSession(tiny)
    [(lp, n)] = session.score_continuations(messages, None, ["<answer>"])
    cached = session.cache.get_seq_length()
    ids = session.render(messages).ids + session.tokenizer("<answer>", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logits = tiny.model(input_ids=torch.tensor([ids])).logits[0].float()  # (T, V)
    target = torch.tensor(ids[-n:])
    expected = torch.log_softmax(logits[-n - 1 : -1], -1).gather(1, target[:, None]).sum().item()
    assert n == len("<answer>") and abs(lp - expected) < 1e-3
    assert session.cache.get_seq_length() == cached


def test_image_observations_reuse_exactly(tiny, tmp_path):
    from PIL import Image

    paths = []
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30)]):
        paths.append(tmp_path / f"frame{i}.png")
        Image.new("RGB", (80, 60), colour).save(paths[-1])
    ctx = Context()
    ctx.append(Instruction(text="Which colour comes first?"))
    ctx.append(Observation(text="keyframe 1", images=(str(paths[0]),)))
    reuse = ModelSession(tiny)
    reuse.next_token_logits(ctx.render(), TOOLS)
    ctx.append(Observation(text="keyframe 2", images=(str(paths[1]),)))
    a = reuse.next_token_logits(ctx.render(), TOOLS)
    assert reuse.last_usage.reused_tokens > 0
    prompt = reuse.render(ctx.render(), TOOLS)
    assert [item.kind for _, item in prompt.media] == ["image", "image"]
    assert 1 in prompt.mm_types and 2 not in prompt.mm_types
    b = ModelSession(tiny).next_token_logits(ctx.render(), TOOLS)
    assert (a - b).abs().max().item() <= 1e-4
