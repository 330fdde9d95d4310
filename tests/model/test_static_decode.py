"""Static decode steps (the CUDA-graph form of decoding) equal ordinary decoding, token for token.

On the CPU the static step runs eagerly, with Python-side cache lengths frozen
until the end of the decode, exactly as a replayed CUDA graph sees them: a step
that read ``length`` (or any other Python state) instead of its index tensor
would attend to the wrong rows and decode differently.
"""

from __future__ import annotations

import pytest
import torch

from mcr.context import Context, Instruction, Observation, VideoRef
from mcr.model.m2la.cache import LatentCache
from mcr.model.runtime.graphed import StaticDecoder
from mcr.model.runtime.session import ModelSession

SMALL = dict(fps=2.0, min_pixels=64 * 64, max_pixels=96 * 64)


@pytest.fixture(scope="module")
def m2la_tiny(tmp_path_factory, build_tiny_m2la):
    return build_tiny_m2la(tmp_path_factory.mktemp("m2la_static"), seed=3)


def _messages(video=None) -> list[dict]:
    ctx = Context()
    if video is not None:
        ctx.append(Observation(text="the video", video=VideoRef(path=str(video), **SMALL)))
    ctx.append(Instruction(text="Describe what happens, then count to twenty."))
    return ctx.render()


@pytest.mark.parametrize("with_video", [False, True])
def test_static_decode_equals_ordinary_decode(m2la_tiny, tiny_video, with_video):
    messages = _messages(tiny_video if with_video else None)
    plain = ModelSession(m2la_tiny, static_decode=False).generate(messages, max_new_tokens=40)
    static_session = ModelSession(m2la_tiny, static_decode=True)
    static = static_session.generate(messages, max_new_tokens=40)
    assert static.token_ids == plain.token_ids
    assert len(static.token_ids) == 40
    # the cache is an ordinary one again, with every decoded token counted (the last token is never fed)
    assert static_session.cache.get_seq_length() == len(static_session.state.ids)
    again = static_session.generate(messages + [{"role": "assistant", "content": static.text}], max_new_tokens=5)
    assert again.usage.reused_tokens > 0


@torch.inference_mode()
def test_static_steps_cross_bucket_boundaries(m2la_tiny):
    """A small bucket forces several buckets (and a buffer growth) inside one decode."""
    session = ModelSession(m2la_tiny, static_decode=False)
    logits = session.prefill(session.render(_messages()))
    reference = ModelSession(m2la_tiny, static_decode=False)
    ref_logits = reference.prefill(reference.render(_messages()))
    decoder = StaticDecoder(session.model, session.cache, position_rows=4, bucket=8)
    for step in range(30):
        token = int(torch.argmax(ref_logits))
        assert token == int(torch.argmax(logits)), step
        ref_logits = reference._forward_text([token])
        logits = session._static_step(decoder, token)
        torch.testing.assert_close(logits, ref_logits, atol=1e-4, rtol=1e-4)
    decoder.sync()
    assert session.cache.get_seq_length() == reference.cache.get_seq_length()


def test_static_decoder_refuses_quantised_cache(m2la_tiny):
    with pytest.raises(ValueError, match="unquantised"):
        StaticDecoder(m2la_tiny.model, LatentCache(quantize_8bit=True), position_rows=4)
