"""LatentCache: the M^2LA KV cache as a transformers 5.x ``Cache``.

Per layer it holds, for each token, the latent ``c`` (``kv_lora_rank``) and the
rotated shared RoPE key (``qk_rope_head_dim``) side by side in one buffer
``(B, capacity, r + dr)``. One joint buffer lets the absorbed decode read a
single key tensor for all heads without a per-step concatenation; capacity
grows geometrically so appends are amortised O(1).

Because it is a real ``Cache`` subclass, ``model(input_ids, cache=...)``,
``generate(cache=...)``, ``crop`` (transformers 5.x semantics: a count <= 0 of
tokens to remove) and ``get_seq_length`` behave as with ``DynamicCache``.
Extras for cross-turn sessions: ``fork()`` (shared prefix, copy-on-write),
``save``/``load`` (safetensors) and ``nbytes``. Optional 8-bit storage keeps
int8 values with one fp16 absmax scale per token for the latent and one for the
RoPE key (lossy; about 4x smaller than bf16 GQA at the 8B shapes).
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import torch
from transformers.cache_utils import Cache, CacheLayerMixin

__all__ = ["LatentLayer", "LatentCache"]

_MIN_CAPACITY = 256


class _Share:
    """Reference count of one buffer shared by forked layers (copy-on-write)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 1


class LatentLayer(CacheLayerMixin):
    """One layer's latent cache; ``keys`` is the latent, ``values`` the RoPE key (both 4-D, 1 head)."""

    is_croppable = True
    is_sliding = False
    is_compileable = False

    def __init__(self, quantize_8bit: bool = False) -> None:  # no super().__init__: keys/values are views
        self.quantize_8bit = quantize_8bit
        self.is_initialized = False
        self.length = 0
        self.rank = 0
        self._buf: torch.Tensor | None = None  # (B, cap, r + dr) float, or int8 when quantised
        self._scale: torch.Tensor | None = None  # (B, cap, 2) fp16 absmax/127 (latent, rope), 8-bit only
        self._share = _Share()
        self._static: tuple[torch.Tensor, int] | None = None  # (write index (1,), keys read) in a static step

    def __del__(self) -> None:
        try:
            self._share.count -= 1
        except AttributeError:
            pass

    # -- views -----------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return self._buf.shape[0] if self._buf is not None else -1

    def joint(self) -> torch.Tensor:
        """Valid part ``(B, S, r + dr)`` in the compute dtype (dequantised if 8-bit)."""
        if self._buf is None:
            raise RuntimeError("LatentLayer.joint() on an empty layer")
        buf = self._buf[:, : self.length]
        if not self.quantize_8bit:
            return buf
        s = self._scale[:, : self.length].to(self.dtype)  # (B, S, 2)
        x = buf.to(self.dtype)
        return torch.cat((x[..., : self.rank] * s[..., :1], x[..., self.rank :] * s[..., 1:]), dim=-1)

    @property
    def keys(self) -> torch.Tensor | None:
        return None if self._buf is None else self.joint()[..., : self.rank].unsqueeze(1)

    @property
    def values(self) -> torch.Tensor | None:
        return None if self._buf is None else self.joint()[..., self.rank :].unsqueeze(1)

    # -- writes ----------------------------------------------------------
    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        B, _, _, r = key_states.shape
        self.rank, self.width = r, r + value_states.shape[-1]
        self.dtype, self.device = key_states.dtype, key_states.device
        self._alloc(B, _MIN_CAPACITY)
        self.is_initialized = True

    def _alloc(self, B: int, cap: int) -> None:
        dt = torch.int8 if self.quantize_8bit else self.dtype
        new = torch.zeros(B, cap, self.width, dtype=dt, device=self.device)
        new_scale = torch.zeros(B, cap, 2, dtype=torch.float16, device=self.device) if self.quantize_8bit else None
        if self._buf is not None and self.length:
            new[:, : self.length] = self._buf[:, : self.length]
            if new_scale is not None:
                new_scale[:, : self.length] = self._scale[:, : self.length]
        self._buf, self._scale = new, new_scale
        self._share.count -= 1
        self._share = _Share()

    def _reserve(self, n: int) -> None:
        need = self.length + n
        if self._share.count > 1:  # someone else reads this buffer: copy before writing
            self._alloc(self._buf.shape[0], max(need, self._buf.shape[1]))
        elif need > self._buf.shape[1]:
            self._alloc(self._buf.shape[0], max(need, 2 * self._buf.shape[1]))

    def update_joint(self, key_states: torch.Tensor, value_states: torch.Tensor) -> torch.Tensor:
        """Append ``latent (B, 1, T, r)`` and ``k_rope (B, 1, T, dr)``; return ``(B, S, r + dr)``."""
        if self._static is not None:
            return self._static_write(key_states, value_states)
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        T = key_states.shape[-2]
        self._reserve(T)
        new = torch.cat((key_states[:, 0], value_states[:, 0]), dim=-1)  # (B, T, r + dr)
        sl = slice(self.length, self.length + T)
        if self.quantize_8bit:
            parts = (new[..., : self.rank], new[..., self.rank :])
            scale = torch.stack([p.abs().amax(-1).clamp_min(1e-8) / 127.0 for p in parts], -1).half()  # (B, T, 2)
            sf = scale.to(new.dtype)
            q = torch.cat((parts[0] / sf[..., :1], parts[1] / sf[..., 1:]), -1).round().clamp(-127, 127)
            self._buf[:, sl], self._scale[:, sl] = q.to(torch.int8), scale
        else:
            self._buf[:, sl] = new
        self.length += T
        return self.joint()

    # -- static decode steps (CUDA graphs) -------------------------------
    def begin_static(self, write_index: torch.Tensor, keys: int) -> None:
        """Enter static mode: the next write goes to ``write_index`` (a ``(1,)`` device tensor) and
        reads return the first ``keys`` rows, whatever ``length`` says. Every shape and address is then
        fixed, which is what a captured CUDA graph needs; ``length`` moves only in :meth:`advance`."""
        if self.quantize_8bit:
            raise ValueError("static decode steps need an unquantised LatentCache")
        if self._buf is None or self._buf.shape[1] < keys or self._share.count > 1:
            raise ValueError(f"static decode needs an owned buffer of >= {keys} rows: call reserve() first")
        self._static = (write_index, keys)

    def end_static(self) -> None:
        """Leave static mode. ``length`` is not moved: :meth:`advance` does that once the steps are
        known to be kept (a graph replays many steps while Python-side state stays as captured)."""
        self._static = None

    def advance(self, steps: int) -> None:
        """Count ``steps`` rows written by static steps as cached tokens."""
        self.length += steps

    def _static_write(self, key_states: torch.Tensor, value_states: torch.Tensor) -> torch.Tensor:
        index, keys = self._static
        new = torch.cat((key_states[:, 0], value_states[:, 0]), dim=-1).to(self._buf.dtype)  # (B, 1, r + dr)
        self._buf.index_copy_(1, index, new)
        return self._buf[:, :keys]

    def reserve(self, total: int) -> None:
        """Own a buffer of at least ``total`` rows (copy-on-write and growth happen now, not mid-graph)."""
        if self._buf is not None:
            self._reserve(max(0, total - self.length))
            if self._share.count > 1:
                self._alloc(self._buf.shape[0], max(total, self._buf.shape[1]))

    def buffer_address(self) -> int:
        return -1 if self._buf is None else self._buf.data_ptr()

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        j = self.update_joint(key_states, value_states)
        return j[..., : self.rank].unsqueeze(1), j[..., self.rank :].unsqueeze(1)  # (B,1,S,r), (B,1,S,dr)

    # -- Cache layer protocol --------------------------------------------
    def get_seq_length(self) -> int:
        return self.length

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.length + query_length, 0

    def get_max_length(self) -> int:
        return -1

    def crop(self, tokens_to_remove: int) -> None:
        """Remove ``-tokens_to_remove`` tokens from the end (transformers 5.x: the count is <= 0)."""
        if tokens_to_remove > 0:
            raise ValueError(
                f"crop({tokens_to_remove}): pass the number of tokens to remove as a value <= 0 "
                "(to keep L tokens: crop(L - cache.get_seq_length()))"
            )
        self.length = max(0, self.length + tokens_to_remove)

    def reset(self) -> None:
        self.length = 0

    def _rewrite(self, fn) -> None:
        """Replace the valid part with ``fn(valid)`` along the batch dim (beam search helpers)."""
        if not self.is_initialized:
            return
        buf = fn(self._buf[:, : self.length])
        scale = fn(self._scale[:, : self.length]) if self.quantize_8bit else None
        self._buf, self._scale = buf.contiguous(), None if scale is None else scale.contiguous()
        self._share.count -= 1
        self._share = _Share()

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self._rewrite(lambda t: t.index_select(0, beam_idx.to(t.device)))

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._rewrite(lambda t: t.repeat_interleave(repeats, dim=0))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._rewrite(lambda t: t[indices])

    def offload(self) -> None:
        if self._buf is not None:
            self._buf = self._buf.to("cpu")
            self._scale = None if self._scale is None else self._scale.to("cpu")

    def prefetch(self) -> None:
        if self._buf is not None and self._buf.device != self.device:
            self._buf = self._buf.to(self.device)
            self._scale = None if self._scale is None else self._scale.to(self.device)

    # -- sharing and bytes ----------------------------------------------
    def fork(self) -> "LatentLayer":
        """A layer that reads the same buffer; whichever writes next copies first."""
        other = LatentLayer(self.quantize_8bit)
        if self.is_initialized:
            other.__dict__.update({k: v for k, v in self.__dict__.items() if k != "_share"})
            other._share = self._share
            self._share.count += 1
        return other

    def nbytes(self, allocated: bool = False) -> int:
        """Bytes of the cached tokens (or of the whole allocation)."""
        if self._buf is None:
            return 0
        n = self._buf.shape[1] if allocated else self.length
        per_tok = self._buf.shape[0] * self._buf.shape[2] * self._buf.element_size()
        if self._scale is not None:
            per_tok += self._scale.shape[0] * 2 * self._scale.element_size()
        return n * per_tok


class LatentCache(Cache):
    """transformers ``Cache`` of M^2LA latents (one :class:`LatentLayer` per decoder layer).

    Args:
        num_layers: create the layers up front (else they are created on first use).
        quantize_8bit: store int8 values with per-token fp16 scales.
    """

    def __init__(self, num_layers: int | None = None, quantize_8bit: bool = False) -> None:
        self.quantize_8bit = quantize_8bit
        if num_layers is None:
            super().__init__(layer_class_to_replicate=partial(LatentLayer, quantize_8bit))
        else:
            super().__init__(layers=[LatentLayer(quantize_8bit) for _ in range(num_layers)])

    def _layer(self, layer_idx: int) -> LatentLayer:
        while len(self.layers) <= layer_idx:
            self.layers.append(LatentLayer(self.quantize_8bit))
        return self.layers[layer_idx]

    def update(self, key_states, value_states, layer_idx: int, *args, **kwargs):
        return self._layer(layer_idx).update(key_states, value_states)

    def update_joint(self, latent: torch.Tensor, k_rope: torch.Tensor, layer_idx: int) -> torch.Tensor:
        """Append ``latent (B,1,T,r)`` and rotated ``k_rope (B,1,T,dr)``; return ``(B, S, r + dr)``."""
        return self._layer(layer_idx).update_joint(latent, k_rope)

    #: in a static decode step, the additive mask ``(1, 1, 1, keys)`` every layer uses instead of the host's
    static_mask: torch.Tensor | None = None

    def begin_static(self, write_index: torch.Tensor, keys: int, dtype: torch.dtype) -> None:
        """One static decode step over ``keys`` rows: the new token is written at ``write_index``
        and attends to rows ``0 .. write_index``. The mask is computed from the index tensor, on the
        device, so a captured graph replays correctly for any position below ``keys``."""
        for layer in self.layers:
            layer.begin_static(write_index, keys)
        rows = torch.arange(keys, device=write_index.device)
        self.static_mask = torch.zeros(keys, dtype=dtype, device=write_index.device).masked_fill(
            rows > write_index, torch.finfo(dtype).min).view(1, 1, 1, keys)

    def end_static(self) -> None:
        for layer in self.layers:
            layer.end_static()
        self.static_mask = None

    def advance(self, steps: int) -> None:
        """Count ``steps`` tokens written by static decode steps (see :class:`~mcr.model.runtime.graphed.StaticDecoder`)."""
        for layer in self.layers:
            layer.advance(steps)

    def reserve(self, total: int) -> None:
        for layer in self.layers:
            layer.reserve(total)

    def buffer_addresses(self) -> tuple[int, ...]:
        return tuple(layer.buffer_address() for layer in self.layers)

    def fork(self) -> "LatentCache":
        """A cache sharing this one's prefix; writes on either side copy that layer first."""
        other = LatentCache(quantize_8bit=self.quantize_8bit)
        other.layers = [layer.fork() for layer in self.layers]
        return other

    def nbytes(self, allocated: bool = False) -> int:
        """Bytes held for the cached tokens over all layers (``allocated``: whole buffers)."""
        return sum(layer.nbytes(allocated) for layer in self.layers)

    def bytes_per_token(self) -> float:
        """Cached bytes per token summed over layers (and batch)."""
        n = self.get_seq_length()
        return self.nbytes() / n if n else 0.0

    # -- persistence -----------------------------------------------------
    def save(self, path: str | Path, metadata: dict[str, Any] | None = None) -> None:
        """Write the cached tokens (not the spare capacity) to a safetensors file.

        ``metadata`` (JSON-serialisable) is stored beside the tensors, e.g. token
        ids or a video hash, and returned by :meth:`load`.
        """
        from safetensors.torch import save_file

        tensors: dict[str, torch.Tensor] = {}
        ranks = []
        for i, layer in enumerate(self.layers):
            ranks.append(layer.rank if layer.is_initialized else 0)
            if layer.is_initialized:
                tensors[f"layers.{i}.joint"] = layer._buf[:, : layer.length].contiguous()
                if layer.quantize_8bit:
                    tensors[f"layers.{i}.scale"] = layer._scale[:, : layer.length].contiguous()
        dtypes = [str(getattr(layer, "dtype", "")) for layer in self.layers]
        meta = {"format": "mcr-latent-cache/1", "quantize_8bit": json.dumps(self.quantize_8bit),
                "ranks": json.dumps(ranks), "dtypes": json.dumps(dtypes), "user": json.dumps(metadata or {})}
        save_file(tensors, str(path), metadata=meta)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> tuple["LatentCache", dict[str, Any]]:
        """Read a file written by :meth:`save`; returns ``(cache, metadata)``."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt", device=str(device)) as f:
            meta = f.metadata() or {}
            if meta.get("format") != "mcr-latent-cache/1":
                raise ValueError(f"{path}: not a LatentCache file (format={meta.get('format')!r})")
            q8 = json.loads(meta["quantize_8bit"])
            ranks, dtypes = json.loads(meta["ranks"]), json.loads(meta["dtypes"])
            cache = cls(num_layers=len(ranks), quantize_8bit=q8)
            for i, (layer, r) in enumerate(zip(cache.layers, ranks)):
                if not r:
                    continue
                buf = f.get_tensor(f"layers.{i}.joint")
                layer.rank, layer.width, layer.length = r, buf.shape[-1], buf.shape[1]
                layer.dtype = getattr(torch, dtypes[i].removeprefix("torch."))
                layer.device = buf.device
                layer._buf = buf
                layer._scale = f.get_tensor(f"layers.{i}.scale") if q8 else None
                layer.is_initialized = True
        return cache, json.loads(meta.get("user", "{}"))
