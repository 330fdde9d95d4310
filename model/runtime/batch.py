"""Continuous batched decode over several sessions' caches: one forward per step for all of them.

A decode step on one conversation reads every weight of the model to produce
one token; on a CPU (and on a GPU at small batch) that read is the cost, so
several conversations decoding together in one forward cost little more than
one. :class:`DecodeBatch` keeps the caches of the sessions decoding now in one
batched cache, left-padded to a common length, and advances all of them with
one forward per step:

* a session **joins** after its own prefill (done alone, on its own cache,
  with its prefix reuse): its cache is copied into a new row, padded on the
  left; the others are padded further if it is longer than they are;
* each **step** feeds one token per row at its own position (1-D RoPE, or the
  3-D M-RoPE positions of Qwen-VL models continued from the session's own),
  under a mask that hides every row's padding; the new keys/values (or M^2LA
  latents) are written in place into spare capacity, so a step copies nothing;
* a session **leaves** when its request finishes (or is cancelled): its row's
  tokens are copied back into a cache of its own, the token ids it consumed
  are appended to its state, and the session is exactly what
  :meth:`ModelSession.generate` would have left — the next turn of that
  conversation reuses it as before. Rows that remain are trimmed of padding
  no row needs any more.

Works for the two cache kinds a session has: transformers' ``DynamicCache``
(per-head keys and values, any Llama-family or Qwen-VL model) and our M^2LA
``LatentCache`` (one latent + RoPE key per token), whose attention takes the
same additive mask. Under greedy decoding a batched row produces the same
tokens as the session decoding alone (tests compare them token for token).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from transformers.cache_utils import DynamicLayer

from mcr.model.runtime.prefix import SessionError

__all__ = ["DecodeBatch", "BatchRow"]

_SPARE = 64  # tokens of capacity added when a batched layer grows


@dataclass(eq=False)
class BatchRow:
    """One session decoding in the batch.

    ``fed`` are the token ids fed through the batch so far (they are in the
    batched cache, not yet in the session's state); ``length`` the tokens the
    row's cache holds; ``rope_next`` the next M-RoPE position (multimodal only).
    """

    session: Any
    length: int
    rope_next: int | None = None
    fed: list[int] = field(default_factory=list)


class _GrowingLayer(DynamicLayer):
    """A batched ``DynamicLayer`` whose keys/values are views into a buffer with spare capacity.

    ``update`` writes the step's keys/values in place (no ``torch.cat`` of the
    whole cache per step, which is what a ``DynamicLayer`` does). Never forked
    or shared: rows leave by copying out.
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor):
        super().__init__()
        self.device, self.is_initialized = keys.device, True
        self.length = keys.shape[-2]
        self._k = self._grow_buffer(keys)
        self._v = self._grow_buffer(values)

    def _grow_buffer(self, x: torch.Tensor) -> torch.Tensor:
        B, H, S, D = x.shape
        buf = x.new_zeros(B, H, S + _SPARE, D)
        buf[:, :, :S] = x
        return buf

    @property
    def keys(self) -> torch.Tensor:
        return self._k[:, :, : self.length]

    @keys.setter
    def keys(self, value: Any) -> None:  # DynamicLayer.__init__ assigns None; the buffer above is the storage
        pass

    @property
    def values(self) -> torch.Tensor:
        return self._v[:, :, : self.length]

    @values.setter
    def values(self, value: Any) -> None:  # as `keys`: the preallocated buffer is the storage, nothing to assign
        pass

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        T = key_states.shape[-2]
        if self.length + T > self._k.shape[-2]:
            self._k = self._grow_buffer(self._k[:, :, : self.length])
            self._v = self._grow_buffer(self._v[:, :, : self.length])
        self._k[:, :, self.length: self.length + T] = key_states
        self._v[:, :, self.length: self.length + T] = value_states
        self.length += T
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length


def _seq_tensors(cache: Any) -> list[list[torch.Tensor]]:
    """Per layer, the cache's tensors with the sequence on dim -2, batch first.

    DynamicCache: keys and values ``(B, H, S, D)``. LatentCache: the joint
    latent+RoPE buffer ``(B, S, W)`` (and its 8-bit scales ``(B, S, 2)``).
    """
    from mcr.model.m2la.cache import LatentCache

    if isinstance(cache, LatentCache):
        out = []
        for layer in cache.layers:
            parts = [layer._buf[:, : layer.length]]
            if layer.quantize_8bit:
                parts.append(layer._scale[:, : layer.length])
            out.append(parts)
        return out
    return [[layer.keys, layer.values] for layer in cache.layers]


def _build(like: Any, tensors: list[list[torch.Tensor]], *, batched: bool, config: Any) -> Any:
    """A cache of ``like``'s kind holding ``tensors`` (from :func:`_seq_tensors`' layout)."""
    from mcr.model.m2la.cache import LatentCache

    if isinstance(like, LatentCache):
        new = LatentCache(num_layers=len(tensors), quantize_8bit=like.quantize_8bit)
        for layer, src, parts in zip(new.layers, like.layers, tensors):
            buf = parts[0]
            B, S, W = buf.shape
            spare = _SPARE if batched else 0
            layer.rank, layer.width, layer.length = src.rank, W, S
            layer.dtype, layer.device = src.dtype, buf.device
            layer._buf = buf.new_zeros(B, S + spare, W)
            layer._buf[:, :S] = buf
            if layer.quantize_8bit:
                layer._scale = parts[1].new_zeros(B, S + spare, 2)
                layer._scale[:, :S] = parts[1]
            layer.is_initialized = True
        return new
    from transformers import DynamicCache

    new = DynamicCache(config=config)
    layers = []
    for keys, values in tensors:
        if batched:
            layers.append(_GrowingLayer(keys, values))
        else:
            layer = DynamicLayer()
            layer.lazy_initialization(keys, values)
            layer.keys, layer.values = keys.contiguous(), values.contiguous()
            layers.append(layer)
    new.layers = layers
    return new


def _pad_left(x: torch.Tensor, n: int) -> torch.Tensor:
    if n == 0:
        return x
    shape = list(x.shape)
    shape[-2] = n
    return torch.cat([x.new_zeros(shape), x], dim=-2)


class DecodeBatch:
    """The sessions decoding now, in one left-padded batched cache.

    Usage (the serving engine's loop)::

        batch = DecodeBatch(loaded)
        row = batch.join(session)                 # after session.prefill(prompt)
        logits = batch.step({row: token, ...})    # (n_rows, V), in the order of the dict
        batch.leave(row)                          # the session holds its cache again
    """

    def __init__(self, loaded: Any):
        self.loaded = loaded
        self.model = loaded.model
        self.rows: list[BatchRow] = []
        self.cache: Any = None
        self.width = 0  # the batched cache's length, padding included

    def __len__(self) -> int:
        return len(self.rows)

    # -- membership ----------------------------------------------------------- #
    def join(self, session: Any) -> BatchRow:
        """Add a prefilled session (its cache is copied into a new row; the session's own is left as it was)."""
        n = session.cache.get_seq_length()
        if n != len(session.state.ids) or n == 0:
            raise SessionError(f"a session joins the batch after its prefill (cache {n}, state "
                               f"{len(session.state.ids)} tokens)")
        rope = session.state.next_position(n) if session.loaded.multimodal else None
        row = BatchRow(session=session, length=n, rope_next=rope)
        mine = _seq_tensors(session.cache)
        if not self.rows:
            self.cache, self.width = _build(session.cache, mine, batched=True, config=self.model.config), n
        else:
            width = max(self.width, n)
            old = _seq_tensors(self.cache)
            merged = [[torch.cat([_pad_left(a, width - self.width), _pad_left(b, width - n)], dim=0)
                       for a, b in zip(layer_old, layer_new)] for layer_old, layer_new in zip(old, mine)]
            self.cache, self.width = _build(session.cache, merged, batched=True, config=self.model.config), width
        self.rows.append(row)
        return row

    def leave(self, row: BatchRow) -> None:
        """Give ``row``'s session its cache back (with the tokens it decoded) and drop the row."""
        i = self.rows.index(row)
        session = row.session
        tensors = [[t[i: i + 1, ..., self.width - row.length:, :].clone() for t in layer]
                   for layer in _seq_tensors(self.cache)]
        session.cache = _build(session.cache, tensors, batched=False, config=self.model.config)
        if row.fed:
            start = len(session.state.ids)
            session.state.ids = session.state.ids + row.fed
            session.state.keys = session.state.keys + [None] * len(row.fed)
            if session.state.positions is not None:
                p0 = session.state.next_position(start)
                rope = torch.arange(p0, p0 + len(row.fed)).view(1, -1).expand(3, -1)  # (3, k)
                session.state.positions = torch.cat([session.state.positions, rope], dim=1)
        if session.cache.get_seq_length() != len(session.state.ids):
            raise SessionError(f"batch row left {session.cache.get_seq_length()} cached tokens for "
                               f"{len(session.state.ids)} tracked")
        self.rows.pop(i)
        if not self.rows:
            self.cache, self.width = None, 0
            return
        keep = [j for j in range(len(self.rows) + 1) if j != i]
        trim = self.width - max(r.length for r in self.rows)  # padding every remaining row has
        kept = [[t[keep][..., trim:, :] for t in layer] for layer in _seq_tensors(self.cache)]
        self.cache = _build(self.cache, kept, batched=True, config=self.model.config)
        self.width -= trim

    # -- one step ------------------------------------------------------------- #
    @torch.inference_mode()
    def step(self, tokens: dict[BatchRow, int]) -> torch.Tensor:
        """Feed one token to every row (all rows, in :attr:`rows` order); return next-token logits ``(B, V)``."""
        if set(tokens) != set(self.rows) or len(tokens) != len(self.rows):
            raise SessionError("a batch step feeds exactly one token to every row")
        device = next(self.model.parameters()).device
        dtype = self.model.dtype
        B, S = len(self.rows), self.width + 1
        input_ids = torch.tensor([[tokens[r]] for r in self.rows], dtype=torch.long, device=device)  # (B, 1)
        mask = torch.full((B, 1, 1, S), torch.finfo(dtype).min, dtype=dtype)
        for i, r in enumerate(self.rows):
            mask[i, ..., self.width - r.length:] = 0  # the row's own tokens and the new one
        seq = torch.tensor([[r.length] for r in self.rows])  # (B, 1): each row's own position
        if self.loaded.multimodal:
            rope = torch.tensor([[r.rope_next] for r in self.rows]).view(1, B, 1).expand(3, B, 1)
            position_ids = torch.cat([seq.view(1, B, 1), rope], dim=0)  # (4, B, 1)
        else:
            position_ids = seq
        out = self.model(input_ids=input_ids, attention_mask=mask.to(device), position_ids=position_ids.to(device),
                         cache=self.cache, use_cache=True, logits_to_keep=1)
        self.width += 1
        for r in self.rows:
            r.fed.append(tokens[r])
            r.length += 1
            if r.rope_next is not None:
                r.rope_next += 1
        return out.logits[:, -1]  # (B, V)
