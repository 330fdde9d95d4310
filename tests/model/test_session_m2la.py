"""ModelSession with an M^2LA model: the LatentCache goes through the same reuse, fork and prefix paths."""

from __future__ import annotations

import pytest

from mcr.context import Context, Instruction, Observation, Thought, TimeSpan, VideoRef
from mcr.model.m2la.cache import LatentCache
from mcr.model.runtime.session import ModelSession

SMALL = dict(fps=2.0, min_pixels=64 * 64, max_pixels=96 * 64)


@pytest.fixture(scope="module")
def m2la_tiny(tmp_path_factory, build_tiny_m2la):
    return build_tiny_m2la(tmp_path_factory.mktemp("m2la"), seed=1)


def turns(video) -> list[Context]:
    ref = VideoRef(path=str(video), **SMALL)
    ctx = Context()
    ctx.append(Observation(text="the video", video=ref))
    ctx.append(Instruction(text="What happens?"))
    out = [ctx.prefix(len(ctx))]
    ctx.append(Thought(text="Look at the second half."))
    ctx.append(Observation(text="zoom", video=ref, span=TimeSpan(start=1.0, end=2.0)))
    out.append(ctx.prefix(len(ctx)))
    ctx.append(Thought(text="It gets brighter."))
    out.append(ctx.prefix(len(ctx)))
    return out


def test_latent_cache_reuse_equals_full_reprefill(m2la_tiny, tiny_video):
    reuse, fresh = ModelSession(m2la_tiny), ModelSession(m2la_tiny)
    assert isinstance(reuse.cache, LatentCache)
    for i, ctx in enumerate(turns(tiny_video)):
        a = reuse.next_token_logits(ctx.render())
        fresh.reset()
        b = fresh.next_token_logits(ctx.render())
        assert (a - b).abs().max().item() <= 1e-4, i
        if i:
            assert reuse.last_usage.reused_tokens > 0
    gen_a = reuse.generate(turns(tiny_video)[-1].render(), max_new_tokens=8)
    fresh.reset()
    gen_b = fresh.generate(turns(tiny_video)[-1].render(), max_new_tokens=8)
    assert gen_a.token_ids == gen_b.token_ids


def test_latent_cache_fork_and_saved_prefix(m2la_tiny, tiny_video, tmp_path):
    first, second = turns(tiny_video)[:2]
    parent = ModelSession(m2la_tiny, prefix_dir=tmp_path)
    parent.next_token_logits(first.render())
    cached, size = parent.cache.get_seq_length(), parent.last_usage.cache_bytes
    child = parent.fork()
    child.generate(second.render(), max_new_tokens=4)
    assert parent.cache.get_seq_length() == cached
    path = parent.save_prefix()
    reader = ModelSession(m2la_tiny, prefix_dir=tmp_path, use_saved_prefixes=True)
    warm = reader.next_token_logits(second.render())
    assert reader.last_usage.prefix_loaded_tokens > 0 and isinstance(reader.cache, LatentCache)
    cold = ModelSession(m2la_tiny).next_token_logits(second.render())
    assert (warm - cold).abs().max().item() <= 1e-4
    assert path.is_file() and size > 0


@pytest.mark.slow
def test_converted_smollm2_runs_in_a_session():
    """SmolLM2 converted GQA -> M^2LA (mcr.model.m2la.convert) keeps exact cache reuse in ModelSession."""
    from mcr.model.m2la.convert import ConvertSpec, collect_input_moments, convert_gqa_to_m2la
    from mcr.model.runtime.loader import load_smollm2

    loaded = load_smollm2()
    calib = loaded.tokenizer("The keeper counts seven ships at night. " * 40, return_tensors="pt").input_ids
    convert_gqa_to_m2la(loaded.model, collect_input_moments(loaded.model, calib), ConvertSpec())
    loaded.m2la = True
    messages = [{"role": "user", "content": "How many ships does the keeper count?"}]
    reuse, fresh = ModelSession(loaded, max_new_tokens=4), ModelSession(loaded, max_new_tokens=4)
    assert isinstance(reuse.cache, LatentCache)
    reuse.next_token_logits(messages)
    longer = messages + [{"role": "assistant", "content": "Seven."}, {"role": "user", "content": "Are you sure?"}]
    a = reuse.next_token_logits(longer)
    assert reuse.last_usage.reused_tokens > 0
    b = fresh.next_token_logits(longer)
    assert (a - b).abs().max().item() <= 1e-3
    assert reuse.generate(longer).token_ids == fresh.generate(longer).token_ids
