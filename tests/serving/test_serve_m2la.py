"""`mcr serve` over an M^2LA-converted vision-language model: a real video in, the latent cache reused.

The model is the tiny Qwen3-VL of ``mcr.model.runtime.tiny`` (random weights,
real architecture and processor) converted with ``mcr convert``, so what is
checked is the plumbing — a ``video_url`` decoded and prefilled through the
M^2LA attention, a ``LatentCache`` kept between requests — not the answers.
"""

from __future__ import annotations

import httpx


def test_a_converted_model_serves_video_and_reuses_its_latent_cache(m2la_folder, sample_with_subtitles):
    from mcr.model.m2la.cache import LatentCache
    from mcr.serving.app import ServerThread, create_app, load_served_model
    from mcr.serving.pool import SessionPool

    loaded, model_id = load_served_model(str(m2la_folder))
    assert loaded.m2la and loaded.multimodal and model_id == "tiny-m2la"
    pool = SessionPool(loaded, sessions=1)
    app = create_app(pool, model_id, allowed_media=[sample_with_subtitles.parent], default_max_tokens=2)
    video = {"type": "video_url", "video_url": {"url": sample_with_subtitles.resolve().as_uri()}}
    first = [{"role": "user", "content": [video, {"type": "text", "text": "What happens?"}]}]
    with ServerThread(app) as url:
        body = {"model": model_id, "messages": first, "mm_processor_kwargs": {"fps": 0.5, "min_pixels": 3136, "max_pixels": 12544}}
        one = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=300)
        assert one.status_code == 200, one.text
        reply = one.json()["choices"][0]["message"]["content"]
        again = first + [{"role": "assistant", "content": reply}, {"role": "user", "content": "And then?"}]
        two = httpx.post(f"{url}/v1/chat/completions", json={**body, "messages": again}, timeout=300).json()
    assert isinstance(pool.slots[0].session.cache, LatentCache)
    video_tokens = sum(1 for k in pool.slots[0].session.state.keys if k is not None)
    assert video_tokens > 0  # the video really went through the model as tokens
    usage = two["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] >= one.json()["usage"]["prompt_tokens"] > video_tokens
    # Only the new turn was prefilled; the video's tokens came from the latent cache.
    assert two["timings"]["prefilled_tokens"] == usage["prompt_tokens"] - usage["prompt_tokens_details"]["cached_tokens"]
    assert two["timings"]["prefilled_tokens"] < video_tokens


def test_a_bad_pixel_budget_is_a_400(m2la_folder, sample_with_subtitles):
    from mcr.serving.app import ServerThread, create_app, load_served_model
    from mcr.serving.pool import SessionPool

    loaded, model_id = load_served_model(str(m2la_folder))
    app = create_app(SessionPool(loaded, sessions=1), model_id, allowed_media=[sample_with_subtitles.parent])
    video = {"type": "video_url", "video_url": {"url": sample_with_subtitles.resolve().as_uri()}}
    body = {"model": model_id, "messages": [{"role": "user", "content": [video]}],
            "mm_processor_kwargs": {"min_pixels": 200704, "max_pixels": 3136}}
    with ServerThread(app) as url:
        r = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
    assert r.status_code == 400 and "max_pixels" in r.json()["error"]["message"]
