"""ModelSession on SmolLM2-135M-Instruct (real weights): reuse is exact on a real model."""

from __future__ import annotations

import pytest
import torch

from mcr.context import Context, Instruction, Observation, Thought, TimeSpan, ToolCall, ToolError, ToolResult, VideoRef
from mcr.model.runtime.loader import load_smollm2
from mcr.model.runtime.session import ModelSession

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "transcribe",
            "description": "Transcribe the speech of a span.",
            "parameters": {"type": "object", "properties": {"start": {"type": "number"}}, "required": []},
        },
    }
]


@pytest.fixture(scope="module")
def smol():
    return load_smollm2()


def turns() -> list[Context]:
    ref = VideoRef(path="/videos/lighthouse.mp4")
    ctx = Context(system_prompt="You answer questions about a video.")
    ctx.append(Instruction(text="How many ships does the keeper count?", video=ref, options=("five", "six", "seven")))
    ctx.append(Observation(text="24 s, 4 scenes", video=ref, span=TimeSpan(start=0.0, end=24.0)))
    out = [ctx.prefix(len(ctx))]
    call = ctx.append(ToolCall(tool="transcribe", arguments={"start": 6.0}))
    ctx.append(ToolResult(tool="transcribe", summary="[6.5s-9.4s] At night the keeper counts seven ships.", refs=(call.id,)))
    out.append(ctx.prefix(len(ctx)))
    ctx.append(ToolError(tool="zoom", error_type="unknown_tool", message="there is no tool 'zoom'"))
    ctx.append(Thought(text="The narration says seven."))
    out.append(ctx.prefix(len(ctx)))
    return out


def test_text_only_rendering_names_media_and_lists_tools(smol):
    prompt = ModelSession(smol).render(turns()[0].render(), TOOLS)
    assert "[video lighthouse.mp4 0.0s-24.0s]" in prompt.text
    assert '"name": "transcribe"' in prompt.text and "<tool_call>" in prompt.text
    assert prompt.text.endswith("<|im_start|>assistant\n")
    assert set(prompt.keys) == {None} and not prompt.media


def test_reuse_equals_full_reprefill_and_greedy_is_identical(smol):
    reuse, fresh = ModelSession(smol, max_new_tokens=6), ModelSession(smol, max_new_tokens=6)
    for i, ctx in enumerate(turns()):
        a = reuse.next_token_logits(ctx.render(), TOOLS)
        usage = reuse.last_usage
        fresh.reset()
        b = fresh.next_token_logits(ctx.render(), TOOLS)
        assert (a - b).abs().max().item() <= 1e-4, i
        if i:
            assert usage.reused_tokens > usage.prefilled_tokens
        assert usage.prompt_tokens == usage.reused_tokens + usage.prefilled_tokens
    gen_a = reuse.generate(turns()[-1].render(), TOOLS)
    fresh.reset()
    gen_b = fresh.generate(turns()[-1].render(), TOOLS)
    assert gen_a.token_ids == gen_b.token_ids and gen_a.text == gen_b.text
    assert gen_a.usage.generated_tokens == len(gen_a.token_ids) > 0


def test_fork_for_a_side_question_leaves_the_main_session_alone(smol):
    main = ModelSession(smol, max_new_tokens=4)
    ctx = turns()[1]
    main.next_token_logits(ctx.render())
    cached = main.cached_tokens
    side = main.fork()
    question = ctx.render() + [{"role": "user", "content": [{"type": "text", "text": "Summarise e3 in five words."}]}]
    side.generate(question)
    # Everything but the cached generation prompt ("assistant\n") is reused.
    assert side.last_usage.reused_tokens >= cached - 3
    assert main.cached_tokens == cached and main.cache.get_seq_length() == cached
    after = main.generate(turns()[2].render())
    twin = ModelSession(smol, max_new_tokens=4)
    twin.next_token_logits(ctx.render())
    assert twin.generate(turns()[2].render()).token_ids == after.token_ids


def test_saved_text_prefix_round_trips(smol, tmp_path):
    first = ModelSession(smol, prefix_dir=tmp_path)
    first.next_token_logits(turns()[1].render())
    first.save_prefix()
    reader = ModelSession(smol, prefix_dir=tmp_path, use_saved_prefixes=True)
    warm = reader.next_token_logits(turns()[2].render())
    assert reader.last_usage.prefix_loaded_tokens > 0
    cold = ModelSession(smol).next_token_logits(turns()[2].render())
    assert torch.allclose(warm, cold, atol=1e-4)
