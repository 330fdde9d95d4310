"""The seed paper's decode table on one GPU: M^2LA vs transformers' GQA, 8B shapes, random bf16 weights.

One JSON line per figure (like the other ``bench_*`` scripts), in one run, so the
two attentions share the card, the driver and the load:

* ``decode``: decode throughput (tokens/s, batch 1) with a 32K and a 128K
  context, for
  - ``gqa_dynamic``: transformers' Qwen3 attention, ``sdpa``, ``DynamicCache``
    (what ``generate`` uses; it concatenates the cache every step),
  - ``gqa_static``: the same attention over a preallocated ``StaticCache``,
  - ``m2la``: our absorbed M^2LA decode (one SDPA call over the shared latent)
    over a :class:`LatentCache`,
  - ``m2la_graphs``: the same under CUDA graphs (:class:`StaticDecoder`).
  The first context is reached by a real, chunked prefill (timed); longer ones
  fill the cache with random values of the right shape, since decode cost
  depends on the cache's size, not its contents, and a 128K prefill of a
  random 8B model would spend the script's time budget on numbers nobody asked for.
* ``fits``: whether a 512K-token (and a 1M-token) context fits on the card,
  GQA vs M^2LA: cache bytes, and one decode step, or the out-of-memory error.

The model is the InternVideo3-8B text decoder's shape (36 layers, width 4096,
32 query heads, 8 KV heads of 128; M^2LA: latent 896 + RoPE key 128). Weights are
random: throughput does not depend on them.

``--tiny`` runs the same code on a toy config on any device (the CPU smoke test
in ``tests/model/test_bench_gpu.py``), so the script cannot rot while no GPU is lent.

Usage: ``python benchmarks/gpu/bench_gpu.py [--tiny] [--device cuda] [--steps 64]``
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import time
from typing import Any

import torch

from mcr.model.m2la.attention import M2LAConfig
from mcr.model.m2la.cache import LatentCache
from mcr.model.m2la.integrate import internvideo3_8b_m2la_config, patch_attention
from mcr.model.runtime.graphed import StaticDecoder


def emit(**kw: Any) -> None:
    print(json.dumps(kw), flush=True)


def host_config(tiny: bool) -> Any:
    from transformers import Qwen3Config

    if tiny:
        return Qwen3Config(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, head_dim=32, vocab_size=512, max_position_embeddings=1 << 21)
    return Qwen3Config(hidden_size=4096, intermediate_size=12288, num_hidden_layers=36, num_attention_heads=32,
                       num_key_value_heads=8, head_dim=128, vocab_size=151936, rope_theta=5e6,
                       max_position_embeddings=1 << 21, tie_word_embeddings=False)


def m2la_config(tiny: bool) -> M2LAConfig:
    if tiny:
        return M2LAConfig(hidden_size=128, num_attention_heads=4, kv_lora_rank=48, qk_rope_head_dim=16,
                          qk_nope_head_dim=32, v_head_dim=32, num_hidden_layers=2)
    return internvideo3_8b_m2la_config()


def build(tiny: bool, device: torch.device, dtype: torch.dtype) -> Any:
    from transformers import AutoModelForCausalLM

    cfg = host_config(tiny)
    cfg._attn_implementation = "sdpa"
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    return model.eval()


def randomise_attention(model: Any) -> None:
    for layer in model.model.layers:
        for p in layer.self_attn.parameters():
            torch.nn.init.normal_(p, std=0.02)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# -- filling caches ---------------------------------------------------------
def fill_gqa(model: Any, ctx: int, static: bool, extra: int) -> Any:
    from transformers import DynamicCache, StaticCache

    cfg = model.config
    p = next(model.parameters())
    shape = (1, cfg.num_key_value_heads, ctx, cfg.head_dim)
    if static:
        cache = StaticCache(config=cfg, max_cache_len=ctx + extra)
        pos = torch.arange(ctx, device=p.device)
        for i in range(cfg.num_hidden_layers):
            k = torch.randn(shape, dtype=p.dtype, device=p.device)
            cache.update(k, torch.randn_like(k), i, {"cache_position": pos})
            del k
        return cache
    cache = DynamicCache()
    for i in range(cfg.num_hidden_layers):
        k = torch.randn(shape, dtype=p.dtype, device=p.device)
        cache.update(k, torch.randn_like(k), i)
    return cache


def fill_latent(model: Any, m2: M2LAConfig, ctx: int, extra: int, chunk: int = 32768) -> LatentCache:
    p = next(model.parameters())
    cache = LatentCache(num_layers=len(model.model.layers))
    for i, layer in enumerate(cache.layers):
        r = m2.rank(i)
        layer.update_joint(torch.randn(1, 1, 1, r, dtype=p.dtype, device=p.device),
                           torch.randn(1, 1, 1, m2.qk_rope_head_dim, dtype=p.dtype, device=p.device))
        layer.reserve(ctx + extra)  # one allocation of the final size: no doubling at 512K
        done = 1
        while done < ctx:
            n = min(chunk, ctx - done)
            layer.update_joint(torch.randn(1, 1, n, r, dtype=p.dtype, device=p.device),
                               torch.randn(1, 1, n, m2.qk_rope_head_dim, dtype=p.dtype, device=p.device))
            done += n
    return cache


def cache_bytes(cache: Any) -> int:
    if isinstance(cache, LatentCache):
        return cache.nbytes()
    return sum(t.nbytes for layer in cache.layers for t in (layer.keys, layer.values) if t is not None)


# -- decoding ---------------------------------------------------------------
@torch.inference_mode()
def decode(model: Any, cache: Any, ctx: int, steps: int, device: torch.device, graphs: bool = False,
           static_positions: bool = False) -> float:
    """Greedy decode ``steps`` tokens after ``ctx`` cached ones; tokens/s (after one warm-up step)."""
    token = 1
    decoder = StaticDecoder(model, cache, position_rows=1) if graphs else None

    def one(i: int) -> int:
        pos = torch.tensor([[ctx + i]], device=device)
        if decoder is not None:
            logits = decoder.step(token, pos)
        else:
            kw = {"cache_position": pos[0]} if static_positions else {}
            out = model(input_ids=torch.tensor([[token]], device=device), position_ids=pos, cache=cache,
                        use_cache=True, logits_to_keep=1, **kw)
            logits = out.logits[0, -1]
        return int(torch.argmax(logits))

    token = one(0)
    sync(device)
    t = time.perf_counter()
    for i in range(1, steps + 1):
        token = one(i)
    sync(device)
    if decoder is not None:
        decoder.sync()
    return steps / (time.perf_counter() - t)


@torch.inference_mode()
def prefill(model: Any, cache: Any, ctx: int, device: torch.device, chunk: int) -> float:
    """A real chunked prefill of ``ctx`` random tokens; seconds."""
    vocab = model.config.vocab_size
    sync(device)
    t = time.perf_counter()
    for start in range(0, ctx, chunk):
        n = min(chunk, ctx - start)
        ids = torch.randint(0, vocab, (1, n), device=device)
        model(input_ids=ids, position_ids=torch.arange(start, start + n, device=device)[None], cache=cache,
              use_cache=True, logits_to_keep=1)
    sync(device)
    return time.perf_counter() - t


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError) or "out of memory" in str(e).lower()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="a toy config and short contexts (any device)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=64, help="decode steps timed per figure")
    ap.add_argument("--contexts", default=None, help="comma-separated decode contexts (default 32768,131072)")
    ap.add_argument("--fits", default=None, help="comma-separated contexts for the fits test (default 524288,1048576)")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    contexts = [int(c) for c in (args.contexts or ("256,1024" if args.tiny else "32768,131072")).split(",")]
    fits = [int(c) for c in (args.fits or ("4096" if args.tiny else "524288,1048576")).split(",") if c]
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    common = dict(device=card, dtype=str(dtype).removeprefix("torch."), torch=torch.__version__,
                  shape="tiny" if args.tiny else "InternVideo3-8B text decoder")
    m2 = m2la_config(args.tiny)
    chunk = 256 if args.tiny else 8192
    extra = args.steps + 512

    model = build(args.tiny, device, dtype)
    results: dict[str, dict[int, float]] = {}
    # GQA first: the host model as transformers builds it.
    for kind in ("gqa_dynamic", "gqa_static"):
        for ctx in contexts:
            try:
                cache = fill_gqa(model, ctx, kind == "gqa_static", extra)
                tps = decode(model, cache, ctx, args.steps, device, static_positions=kind == "gqa_static")
                results.setdefault(kind, {})[ctx] = tps
                emit(figure="decode", attention=kind, context=ctx, tokens_per_s=round(tps, 2),
                     cache_gb=round(cache_bytes(cache) / 2**30, 3), **common)
            except Exception as e:  # noqa: BLE001 - recorded, the run goes on
                emit(figure="decode", attention=kind, context=ctx, error=f"{type(e).__name__}: {str(e)[:200]}", **common)
            cache = None
            free(device)
    if contexts:
        cache = __import__("transformers").DynamicCache()
        secs = prefill(model, cache, contexts[0], device, chunk)
        emit(figure="prefill", attention="gqa_dynamic", context=contexts[0], seconds=round(secs, 3), **common)
        cache = None
        free(device)
    fit_gqa: dict[int, str] = {}
    for ctx in fits:
        try:
            cache = fill_gqa(model, ctx, False, extra)
            decode(model, cache, ctx, 2, device)
            fit_gqa[ctx] = "runs"
            emit(figure="fits", attention="gqa_dynamic", context=ctx, result="runs",
                 cache_gb=round(cache_bytes(cache) / 2**30, 2), **common)
        except Exception as e:  # noqa: BLE001
            fit_gqa[ctx] = "out of memory" if is_oom(e) else type(e).__name__
            emit(figure="fits", attention="gqa_dynamic", context=ctx, result=fit_gqa[ctx],
                 error=str(e)[:200], **common)
        cache = None
        free(device)

    # The same host with M^2LA attention (new random weights).
    patch_attention(model, m2)
    randomise_attention(model)
    model.to(dtype)
    for kind in ("m2la", "m2la_graphs"):
        if kind == "m2la_graphs" and device.type != "cuda" and not args.tiny:
            continue
        for ctx in contexts:
            try:
                cache = fill_latent(model, m2, ctx, extra)
                tps = decode(model, cache, ctx, args.steps, device, graphs=kind == "m2la_graphs")
                results.setdefault(kind, {})[ctx] = tps
                emit(figure="decode", attention=kind, context=ctx, tokens_per_s=round(tps, 2),
                     cache_gb=round(cache_bytes(cache) / 2**30, 3), **common)
            except Exception as e:  # noqa: BLE001
                emit(figure="decode", attention=kind, context=ctx, error=f"{type(e).__name__}: {str(e)[:200]}", **common)
            cache = None
            free(device)
    if contexts:
        cache = LatentCache(num_layers=len(model.model.layers))
        secs = prefill(model, cache, contexts[0], device, chunk)
        emit(figure="prefill", attention="m2la", context=contexts[0], seconds=round(secs, 3), **common)
        cache = None
        free(device)
    for ctx in fits:
        try:
            cache = fill_latent(model, m2, ctx, extra)
            decode(model, cache, ctx, 2, device)
            emit(figure="fits", attention="m2la", context=ctx, result="runs",
                 cache_gb=round(cache_bytes(cache) / 2**30, 2), gqa=fit_gqa.get(ctx), **common)
        except Exception as e:  # noqa: BLE001
            emit(figure="fits", attention="m2la", context=ctx, result="out of memory" if is_oom(e) else
                 type(e).__name__, error=str(e)[:200], **common)
        cache = None
        free(device)
    for ctx in contexts:
        base = results.get("gqa_dynamic", {}).get(ctx)
        for kind in ("m2la", "m2la_graphs"):
            if base and ctx in results.get(kind, {}):
                emit(figure="speedup", context=ctx, attention=kind, versus="gqa_dynamic",
                     ratio=round(results[kind][ctx] / base, 3),
                     versus_static=round(results[kind][ctx] / results["gqa_static"][ctx], 3)
                     if ctx in results.get("gqa_static", {}) else None, **common)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
