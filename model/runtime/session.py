"""ModelSession: one model and its KV cache across the turns of an episode.

The context only grows, so each turn's prompt starts with the previous turn's.
A session keeps the token ids already in its cache; on every call it renders the
chat messages to tokens (:mod:`mcr.model.runtime.prompt`), finds the longest common
prefix with what is cached, crops the cache there, prefills only the delta and
decodes. Reuse is exact: logits equal a full re-prefill (tests guard it).
Cache operations, the prefix file format and saving/loading prefixes are in
:mod:`mcr.model.runtime.prefix`.

Multimodal RoPE (Qwen3-VL / InternVideo3): transformers keeps the video
position offset (``rope_deltas``) on the model, where another video overwrites
it. We never rely on it: the session computes each delta's 3-D positions with
the model's own ``get_rope_index`` over the delta alone and shifts them by the
next free position of the cached prefix — what a full prefill computes, since
positions are a left-to-right scan. Positions are passed explicitly as
``(4, 1, T)``: the sequence index (for the causal mask) then (t, h, w).

``fork()`` gives a side session sharing the cached prefix (copy-on-write: the
``DynamicCache`` never writes a tensor in place, and ``LatentCache.fork`` copies
on write), for verification or summarisation queries. Prefixes can be saved to
and loaded from disk, keyed by the model, the prefix tokens and each media
item's file content hash + sampling settings.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mcr.model.runtime.loader import LoadedModel, user_cache_dir
from mcr.model.runtime.prefix import ContextOverflow, SavedPrefixes, SessionError, cache_bytes, crop_to, fork_cache
from mcr.model.runtime.prompt import Prompt, PromptRenderer
from mcr.progress import progress
from mcr.usage import Usage

__all__ = ["ModelSession", "Generation", "SessionError", "ContextOverflow"]


@dataclass
class Generation:
    """One call's output: the decoded text, its token ids, and what it cost."""

    text: str
    token_ids: list[int]
    usage: Usage
    stop_reason: str = "eos"


@dataclass
class _State:
    """What is in the cache: token ids, media keys and (for M-RoPE) positions."""

    ids: list[int] = field(default_factory=list)
    keys: list[str | None] = field(default_factory=list)
    positions: torch.Tensor | None = None  # (3, T) M-RoPE positions, or None for 1-D RoPE

    def common_prefix(self, prompt: Prompt) -> int:
        n = min(len(self.ids), len(prompt.ids))
        i = 0
        while i < n and self.ids[i] == prompt.ids[i] and self.keys[i] == prompt.keys[i]:
            i += 1
        # Never cut inside a media item: back off to its first token.
        for start, item in prompt.media:
            if start < i < start + len(item.token_ids):
                i = start
        return i

    def next_position(self, upto: int) -> int:
        if upto == 0:
            return 0
        if self.positions is None:
            return upto
        return int(self.positions[:, :upto].max()) + 1


class ModelSession(SavedPrefixes):
    """One model and its KV cache for one episode (or a fork of one).

    Args:
        loaded: from :func:`mcr.model.runtime.loader.load_model`.
        prefix_dir: where :meth:`save_prefix` writes and calls look for saved
            prefixes (default ``~/.cache/mcr/prefixes``); ``use_saved_prefixes``
            turns the look-up on.
        max_new_tokens: default decode budget per call.
        temperature: 0 is greedy (deterministic); otherwise sample with ``top_p``.
        seed: for sampling.
        window: use at most this many tokens of the model's window (a smaller prompt is faster on a CPU
            and needs less memory); None uses all of it.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        prefix_dir: str | Path | None = None,
        use_saved_prefixes: bool = False,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int = 0,
        renderer: PromptRenderer | None = None,
        static_decode: bool | None = None,
        window: int | None = None,
    ):
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.renderer = renderer or PromptRenderer(loaded)
        self.prefix_dir = Path(prefix_dir) if prefix_dir else user_cache_dir() / "prefixes"
        self.use_saved_prefixes = use_saved_prefixes
        if use_saved_prefixes:
            self.renderer.use_layouts_from(self.prefix_dir)
        if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 256):
            raise ValueError(f"window must be a whole number of tokens >= 256, not {window!r}")
        self.window_cap = window
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.seed = seed
        self._generator = torch.Generator().manual_seed(seed)
        self.cache = self._new_cache()
        self.state = _State()
        self.last_usage = Usage()
        # Decode through fixed-shape steps (CUDA graphs on CUDA; mcr.model.runtime.graphed). None: on CUDA
        # with an M^2LA cache. True on the CPU runs the same static steps eagerly (how the tests check them).
        self.static_decode = static_decode
        eos = self.tokenizer.eos_token_id
        self.eos_ids = {eos} if eos is not None else set()
        gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        self.eos_ids |= set(gen_eos if isinstance(gen_eos, list) else [gen_eos] if gen_eos is not None else [])

    # -- cache plumbing ------------------------------------------------------ #
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _new_cache(self) -> Any:
        text = self.model.config.get_text_config(decoder=True)
        if self.loaded.m2la or getattr(text, "m2la", False):
            from mcr.model.m2la.cache import LatentCache

            return LatentCache(num_layers=text.num_hidden_layers)
        from transformers import DynamicCache

        return DynamicCache(config=self.model.config)

    @property
    def window(self) -> int | None:
        """The context window in tokens: the model's (its text config's ``max_position_embeddings``), or the
        session's ``window`` setting when that is smaller; None when neither says."""
        value = getattr(self.model.config.get_text_config(decoder=True), "max_position_embeddings", None)
        sizes = [int(v) for v in (value, self.window_cap) if v]
        return min(sizes) if sizes else None

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` is for this model (no special tokens added)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @property
    def cached_tokens(self) -> int:
        return len(self.state.ids)

    def reset(self) -> None:
        """Drop the cache (the next call prefills everything)."""
        self.cache = self._new_cache()
        self.state = _State()

    def fork(self) -> ModelSession:
        """A side session sharing this one's cached prefix; it never changes this one."""
        child = copy.copy(self)
        child.cache = fork_cache(self.cache)
        child.state = _State(list(self.state.ids), list(self.state.keys), self.state.positions)
        child._generator = torch.Generator().manual_seed(int(self._generator.initial_seed()))
        child.last_usage = Usage()
        return child

    # -- the main calls ------------------------------------------------------ #
    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> Prompt:
        """Tokens (and media) of ``messages`` with the generation prompt appended."""
        return self.renderer.render(messages, tools)

    @torch.inference_mode()
    def prefill(self, prompt: Prompt) -> torch.Tensor:
        """Bring the cache to ``prompt`` (reusing the common prefix); return next-token logits ``(V,)``."""
        t0 = time.perf_counter()
        window = self.window
        if window and len(prompt) >= window:
            raise ContextOverflow(f"prompt of {len(prompt)} tokens exceeds the model's window of {window}")
        keep = self.state.common_prefix(prompt)
        loaded = 0
        if self.use_saved_prefixes:
            loaded = self._try_load_prefix(prompt, better_than=keep)
            if loaded:
                keep = loaded
        if keep == len(prompt):  # nothing new: re-run the last token to get its logits
            keep -= 1
        crop_to(self.cache, keep)
        self.state.ids, self.state.keys = self.state.ids[:keep], self.state.keys[:keep]
        if self.state.positions is not None:
            self.state.positions = self.state.positions[:, :keep]
        logits = self._forward(prompt, keep)
        self.last_usage = Usage(
            prompt_tokens=len(prompt),
            reused_tokens=keep - loaded,
            prefix_loaded_tokens=loaded,
            prefilled_tokens=len(prompt) - keep,
            cache_bytes=cache_bytes(self.cache),
            prefill_s=time.perf_counter() - t0,
        )
        return logits

    def next_token_logits(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> torch.Tensor:
        """Prefill ``messages`` and return the next-token logits ``(V,)`` (float32)."""
        return self.prefill(self.render(messages, tools)).float()

    @torch.inference_mode()
    def generate(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        max_new_tokens: int | None = None,
        stop: tuple[str, ...] = (),
        logits_processor: Any = None,
        response_prefix: str = "",
    ) -> Generation:
        """Render, prefill the delta, then decode until EOS, a stop string or the budget.

        ``logits_processor(ids, scores) -> scores`` (transformers style, e.g. a
        grammar constraint) sees the generated ids so far, ``(1, n)``, and the
        scores ``(1, V)``. ``response_prefix`` is forced as the start of the reply
        (it is fed, not generated, and not part of the returned text).
        """
        t0 = time.perf_counter()
        logits = self.prefill(self.render(messages, tools))
        usage = self.last_usage
        if response_prefix:
            forced = self.tokenizer(response_prefix, add_special_tokens=False)["input_ids"]
            logits = self._forward_text(forced)
            usage = usage.plus_forced(len(forced))
        budget = self.max_new_tokens if max_new_tokens is None else max_new_tokens
        decoder = self._static_decoder()
        # Decoding on a CPU takes seconds: show it on a terminal, stay quiet in tests and pipes.
        bar = progress(total=budget, desc="decoding", unit="tok")
        try:
            out, reason = self._decode(logits, budget, bar, decoder, logits_processor, stop)
        finally:
            if decoder is not None:
                decoder.sync()
        bar.close()
        text = self.tokenizer.decode([t for t in out if t not in self.eos_ids], skip_special_tokens=False)
        usage = usage.model_copy(
            update={
                "generated_tokens": len(out),
                "cache_bytes": cache_bytes(self.cache),
                "latency_s": time.perf_counter() - t0,
            }
        )
        self.last_usage = usage
        return Generation(text=text, token_ids=out, usage=usage, stop_reason=reason)

    def _decode(self, logits, budget, bar, decoder, logits_processor, stop) -> tuple[list[int], str]:
        """The decode loop: pick, stop on EOS / a stop string / the budget, feed the token back."""
        out: list[int] = []
        reason = "length"
        for _ in range(budget):
            bar.update(1)
            scores = logits.float()[None]  # (1, V)
            if logits_processor is not None:
                scores = logits_processor(torch.tensor([out], dtype=torch.long), scores)
            token = self._select(scores[0])
            out.append(token)
            if token in self.eos_ids:
                reason = "eos"
                break
            if stop and any(s in self.tokenizer.decode(out[-16:]) for s in stop):
                reason = "stop"
                break
            logits = self._forward_text([token]) if decoder is None else self._static_step(decoder, token)
        return out, reason

    def _static_decoder(self) -> Any:
        """A :class:`~mcr.model.runtime.graphed.StaticDecoder` when this session decodes through static steps."""
        from mcr.model.runtime.graphed import StaticDecoder, supports_static_decode

        wanted = self.static_decode if self.static_decode is not None else self.device.type == "cuda"
        if not wanted or not supports_static_decode(self.cache) or not self.state.ids:
            return None
        return StaticDecoder(self.model, self.cache, position_rows=4 if self.loaded.multimodal else 1)

    def _static_step(self, decoder: Any, token: int) -> torch.Tensor:
        """One token through the static decoder, with the same bookkeeping as :meth:`_forward_text`."""
        start = len(self.state.ids)
        if not self.loaded.multimodal:
            logits = decoder.step(token, torch.tensor([[start]]))
            self.state.ids.append(token)
            self.state.keys.append(None)
            return logits
        p0 = self.state.next_position(start)
        rope = torch.full((3, 1, 1), p0)
        logits = decoder.step(token, torch.cat([torch.full((1, 1, 1), start), rope], 0))
        self.state.ids.append(token)
        self.state.keys.append(None)
        prev = self.state.positions if self.state.positions is not None else torch.zeros(3, 0, dtype=torch.long)
        self.state.positions = torch.cat([prev, rope[:, 0].cpu()], dim=1)
        return logits

    @torch.inference_mode()
    def score_continuations(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        continuations: list[str],
    ) -> list[tuple[float, int]]:
        """Log-probability of each continuation of the reply, as ``(sum, n_tokens)``.

        The prompt is prefilled once (reusing the cache); each continuation runs
        on a fork, so the session's own cache is unchanged. This is constrained
        decoding by enumeration: a policy picks among well-formed replies.
        """
        t0 = time.perf_counter()
        last = self.prefill(self.render(messages, tools)).float()  # (V,)
        usage = self.last_usage
        results = []
        for text in continuations:
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if not ids:
                results.append((0.0, 0))
                continue
            side = self.fork()
            logits = side._forward_text(ids, all_logits=True).float()  # (T, V)
            steps = torch.cat([last[None], logits[:-1]])  # (T, V): logits predicting each token
            logp = torch.log_softmax(steps, dim=-1).gather(1, torch.tensor(ids)[:, None])  # (T, 1)
            results.append((float(logp.sum()), len(ids)))
            usage = usage.plus_scored(len(ids))
        self.last_usage = usage.model_copy(update={"latency_s": time.perf_counter() - t0})
        return results

    def _select(self, scores: torch.Tensor) -> int:
        if self.temperature <= 0:
            return int(torch.argmax(scores))
        probs = torch.softmax(scores / self.temperature, dim=-1)  # (V,)
        if self.top_p < 1.0:
            sorted_p, order = torch.sort(probs, descending=True)
            cut = torch.cumsum(sorted_p, 0) - sorted_p > self.top_p
            sorted_p[cut] = 0
            probs = torch.zeros_like(probs).scatter(0, order, sorted_p)
        return int(torch.multinomial(probs / probs.sum(), 1, generator=self._generator))

    # -- forward passes ------------------------------------------------------ #
    def _forward(self, prompt: Prompt, start: int) -> torch.Tensor:
        ids = prompt.ids[start:]
        keys = prompt.keys[start:]
        if not self.loaded.multimodal:
            return self._run(ids, keys, torch.arange(start, start + len(ids))[None])  # (1, T)
        new_media = [(s - start, item) for s, item in prompt.media if s >= start]
        mm_types = torch.tensor([prompt.mm_types[start:]], dtype=torch.int)  # (1, T)
        kwargs: dict[str, Any] = {}
        videos = [item for _, item in new_media if item.kind == "video"]
        images = [item for _, item in new_media if item.kind == "image"]
        if videos:
            kwargs["pixel_values_videos"] = torch.cat([v.pixel_values() for v in videos]).to(self.device, self.model.dtype)
            kwargs["video_grid_thw"] = torch.cat([v.grid_thw for v in videos]).to(self.device)  # (n_videos, 3)
        if images:
            kwargs["pixel_values"] = torch.cat([i.pixel_values() for i in images]).to(self.device, self.model.dtype)
            kwargs["image_grid_thw"] = torch.cat([i.grid_thw for i in images]).to(self.device)  # (n_images, 3)
        input_ids = torch.tensor([ids], dtype=torch.long)  # (1, T)
        rope, _ = self.model.model.get_rope_index(
            input_ids,
            mm_token_type_ids=mm_types,
            image_grid_thw=kwargs.get("image_grid_thw"),
            video_grid_thw=kwargs.get("video_grid_thw").clone() if videos else None,
        )  # (3, 1, T), starting at 0
        rope = rope + self.state.next_position(start)
        seq = torch.arange(start, start + len(ids)).view(1, 1, -1)  # (1, 1, T)
        position_ids = torch.cat([seq, rope], dim=0)  # (4, 1, T)
        if videos or images:
            kwargs["mm_token_type_ids"] = mm_types.to(self.device)
        return self._run(ids, keys, position_ids, rope=rope[:, 0], **kwargs)

    def _forward_text(self, ids: list[int], all_logits: bool = False) -> torch.Tensor:
        start = len(self.state.ids)
        keys: list[str | None] = [None] * len(ids)
        if not self.loaded.multimodal:
            return self._run(ids, keys, torch.arange(start, start + len(ids))[None], all_logits=all_logits)
        p0 = self.state.next_position(start)
        rope = torch.arange(p0, p0 + len(ids)).view(1, 1, -1).expand(3, 1, -1)  # (3, 1, T)
        seq = torch.arange(start, start + len(ids)).view(1, 1, -1)  # (1, 1, T)
        return self._run(ids, keys, torch.cat([seq, rope], 0), rope=rope[:, 0], all_logits=all_logits)

    def _run(
        self, ids: list[int], keys: list[str | None], position_ids: torch.Tensor, rope=None, all_logits: bool = False,
        **kwargs,
    ) -> torch.Tensor:
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)  # (1, T)
        out = self.model(
            input_ids=input_ids,
            position_ids=position_ids.to(self.device),
            cache=self.cache,
            use_cache=True,
            logits_to_keep=0 if all_logits else 1,
            **kwargs,
        )
        self.state.ids += ids
        self.state.keys += keys
        if rope is not None:
            prev = self.state.positions if self.state.positions is not None else torch.zeros(3, 0, dtype=torch.long)
            self.state.positions = torch.cat([prev, rope.cpu()], dim=1)  # (3, T)
        if self.cache.get_seq_length() != len(self.state.ids):
            raise SessionError(
                f"cache holds {self.cache.get_seq_length()} tokens but the session tracked {len(self.state.ids)}"
            )
        return out.logits[0] if all_logits else out.logits[0, -1]  # (T, V) or (V,)
