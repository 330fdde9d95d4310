"""Batched decode equals one-at-a-time decode, token for token, under greedy decoding.

Conversations of different lengths join a :class:`DecodeBatch` at different
steps (each after its own prefill) and leave when they finish, as in the
server; each one's tokens must be those ``ModelSession.generate`` gives alone,
and the session it leaves behind must serve the conversation's next turn
with its prefix reused, exactly as a fresh session would answer it. On the
real SmolLM2 (a KV cache, 1-D RoPE) and on the tiny Qwen3-VL converted to
M^2LA (a latent cache, 3-D M-RoPE, one conversation holding a video).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from mcr.model.runtime.batch import DecodeBatch
from mcr.model.runtime.session import ModelSession


def _text(t: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": t}]}]


def _decode_together(loaded, conversations, budgets, join_at):
    """Greedy-decode every conversation in one batch; conversation i joins at step ``join_at[i]``."""
    sessions = [ModelSession(loaded) for _ in conversations]
    batch, rows, out = DecodeBatch(loaded), {}, [[] for _ in conversations]
    step, pending = 0, list(range(len(conversations)))
    widths = set()
    while pending or batch.rows:
        for i in [i for i in pending if join_at[i] <= step]:
            pending.remove(i)
            logits = sessions[i].prefill(sessions[i].render(conversations[i]))
            out[i].append(int(logits.argmax()))
            if out[i][-1] in sessions[i].eos_ids or len(out[i]) >= budgets[i]:
                continue
            rows[i] = batch.join(sessions[i])
        if batch.rows:
            live = [i for i, r in rows.items() if r in batch.rows]
            order = {id(r): k for k, r in enumerate(batch.rows)}
            logits = batch.step({rows[i]: out[i][-1] for i in live})
            widths.add(len(batch.rows))
            for i in live:
                out[i].append(int(logits[order[id(rows[i])]].argmax()))
                if out[i][-1] in sessions[i].eos_ids or len(out[i]) >= budgets[i]:
                    batch.leave(rows[i])
        step += 1
    return out, sessions, widths


def _check(loaded, conversations, budgets, join_at):
    alone = [ModelSession(loaded).generate(c, max_new_tokens=b).token_ids for c, b in zip(conversations, budgets)]
    together, sessions, widths = _decode_together(loaded, conversations, budgets, join_at)
    assert together == alone
    assert max(widths) >= 3  # several rows really decoded in one forward
    # Each session, handed back, continues its conversation as a fresh session would, reusing its prefix.
    for conv, session, tokens in list(zip(conversations, sessions, together))[:2]:
        reply = loaded.tokenizer.decode([t for t in tokens if t not in session.eos_ids])
        nxt = conv + [{"role": "assistant", "content": [{"type": "text", "text": reply}]}] + _text("And then?")
        again = session.generate(nxt, max_new_tokens=4)
        assert again.token_ids == ModelSession(loaded).generate(nxt, max_new_tokens=4).token_ids
        assert again.usage.reused_tokens >= len(session.render(conv)) - 1


def test_batched_decode_equals_one_at_a_time_on_smollm2(smollm2):
    loaded, _ = smollm2
    conversations = [
        _text("What is the capital of France?"),
        [{"role": "system", "content": [{"type": "text", "text": "You are a poet. Answer in verse, at length."}]}]
        + _text("Write about the sea, the wind and the autumn light on the harbour walls."),
        _text("2+2=?"),
        _text("Name three colours of the rainbow."),
    ]
    _check(loaded, conversations, budgets=[10, 14, 5, 9], join_at=[0, 0, 3, 5])


def test_batched_decode_equals_one_at_a_time_on_m2la(m2la_folder, sample_with_subtitles):
    from mcr.model.m2la.cache import LatentCache
    from mcr.serving.app import load_served_model

    loaded, _ = load_served_model(str(m2la_folder))
    assert loaded.m2la and isinstance(ModelSession(loaded).cache, LatentCache)
    video = [{"role": "user", "content": [
        {"type": "video", "video": str(sample_with_subtitles), "fps": 0.5, "min_pixels": 3136, "max_pixels": 12544},
        {"type": "text", "text": "What happens?"}]}]
    conversations = [video, _text("Hello there, how are you?"), _text("One two three four five six seven."),
                     _text("Tell me a story.")]
    _check(loaded, conversations, budgets=[8, 8, 6, 8], join_at=[0, 1, 1, 4])


def test_concurrent_requests_are_decoded_together_with_the_same_replies(smollm2):
    from mcr.serving.app import ServerThread, create_app
    from mcr.serving.pool import SessionPool

    loaded, model = smollm2
    questions = ["Name a big city.", "What do cats eat?", "Say something kind.", "Why is the sky blue?"]
    bodies = [{"model": model, "messages": [{"role": "user", "content": q}], "max_tokens": 10} for q in questions]
    replies = {}
    for batch in (1, 4):
        pool = SessionPool(loaded, sessions=4, max_running=batch, max_waiting=4)
        app = create_app(pool, model)
        with ServerThread(app) as url, ThreadPoolExecutor(4) as ex:
            got = list(ex.map(lambda b: httpx.post(f"{url}/v1/chat/completions", json=b, timeout=300).json(), bodies))
        replies[batch] = [g["choices"][0]["message"]["content"] for g in got]
        tokens = sum(g["usage"]["completion_tokens"] for g in got)
        if batch == 4:  # fewer forward steps than tokens: rows shared steps
            assert app.state.engine.steps < tokens - len(bodies)
    assert replies[4] == replies[1]
