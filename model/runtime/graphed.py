"""Single-token decode steps with fixed shapes and addresses, replayed as CUDA graphs on CUDA.

Decoding one token of an 8B model launches hundreds of small kernels; on a GPU
the launch overhead, not the arithmetic, sets the pace at batch 1. A CUDA graph
records one step's kernels once and replays them with a single launch. A graph
may only be replayed if every tensor it touches keeps its shape and address, so a
step here is *static*:

* the token, its position(s) and the write index live in fixed input buffers;
* the :class:`~mcr.model.m2la.cache.LatentCache` writes the new latent at the
  index with ``index_copy_`` and every layer reads a fixed number of rows
  (``keys``, a multiple of ``bucket``) under a mask built on the device from the
  index (:meth:`LatentCache.begin_static`), never from Python's ``length``;
* the logits land in a fixed output buffer.

One graph is captured per ``keys`` bucket (a 32K-token prompt decoding 256 tokens
meets one or two buckets). Python-side lengths are frozen while steps run and
advanced once by :meth:`StaticDecoder.sync`, which is exactly what replaying a
graph implies; on the CPU the same static step runs eagerly, which is how the
tests prove the step reads no Python state (a step that did would read the
frozen length and decode differently from the ordinary path).

The recipe follows gpt-fast's static-cache decode (our own code).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["StaticDecoder", "supports_static_decode"]


def supports_static_decode(cache: Any) -> bool:
    """An unquantised :class:`LatentCache` (the M^2LA cache) can run static steps."""
    from mcr.model.m2la.cache import LatentCache

    return isinstance(cache, LatentCache) and not cache.quantize_8bit


@dataclass
class _Graph:
    graph: Any  # torch.cuda.CUDAGraph
    addresses: tuple[int, ...]


@dataclass
class StaticDecoder:
    """Decode steps of one session's model over its LatentCache.

    Args:
        model: the host model (Qwen3-VL or Llama-family with M^2LA attention).
        cache: the session's LatentCache, already prefilled.
        position_rows: rows of ``position_ids`` the model takes (1 for 1-D RoPE, 4 for Qwen3-VL's
            text position plus t/h/w).
        bucket: ``keys`` grows in steps of this many rows.
        use_graphs: capture and replay CUDA graphs (default: when the cache lives on CUDA).
    """

    model: Any
    cache: Any
    position_rows: int
    bucket: int = 256
    use_graphs: bool | None = None
    pending: int = 0
    graphs: dict[int, _Graph] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not supports_static_decode(self.cache):
            raise ValueError("StaticDecoder needs an unquantised LatentCache")
        device = next(self.model.parameters()).device
        self.device = device
        self.dtype = next(self.model.parameters()).dtype
        if self.use_graphs is None:
            self.use_graphs = device.type == "cuda"
        self.ids = torch.zeros(1, 1, dtype=torch.long, device=device)
        shape = (1, 1) if self.position_rows == 1 else (self.position_rows, 1, 1)  # as the model takes them
        self.positions = torch.zeros(shape, dtype=torch.long, device=device)
        self.index = torch.zeros(1, dtype=torch.long, device=device)
        self.logits: torch.Tensor | None = None
        self.pool = torch.cuda.graph_pool_handle() if self.use_graphs else None

    # -- one step --------------------------------------------------------
    @torch.inference_mode()
    def step(self, token: int, position_ids: torch.Tensor) -> torch.Tensor:
        """Decode ``token`` at ``position_ids`` (``(rows, 1, 1)`` or ``(1, 1)``); return the next logits ``(V,)``."""
        length = self.cache.get_seq_length() + self.pending  # the row this token is written to
        keys = -(-(length + 1) // self.bucket) * self.bucket
        if self._needs_room(keys):
            self.sync()
            self.cache.reserve(keys + self.bucket)  # room for this bucket and the next: no copy mid-bucket
        self.ids.fill_(token)
        self.positions.copy_(position_ids.view(self.positions.shape))
        self.index.fill_(length)
        if self.use_graphs:
            self._graph_for(keys).graph.replay()
        else:
            self._run(keys)
        self.pending += 1
        return self.logits.clone()

    def sync(self) -> None:
        """Count the steps run since the last sync as cached tokens (call before any other forward)."""
        if self.pending:
            self.cache.advance(self.pending)
            self.pending = 0

    # -- internals -------------------------------------------------------
    def _needs_room(self, keys: int) -> bool:
        layers = self.cache.layers
        return any(layer._buf is None or layer._buf.shape[1] < keys or layer._share.count > 1 for layer in layers)

    def _run(self, keys: int) -> None:
        """The static step itself: every tensor read or written has a fixed shape and address."""
        self.cache.begin_static(self.index, keys, self.dtype)
        try:
            out = self.model(input_ids=self.ids, position_ids=self.positions, cache_position=self.index,
                             cache=self.cache, use_cache=True, logits_to_keep=1)
        finally:
            self.cache.end_static()
        if self.logits is None:
            self.logits = torch.empty_like(out.logits[0, -1])
        self.logits.copy_(out.logits[0, -1])

    def _graph_for(self, keys: int) -> _Graph:
        addresses = self.cache.buffer_addresses()
        found = self.graphs.get(keys)
        if found is not None and found.addresses == addresses:
            return found
        # Warm up on a side stream (allocator and lazy kernels settle), then capture. Warm-up writes the
        # same token to the same row the replay writes, so it changes nothing.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                self._run(keys)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            self._run(keys)
        self.graphs = {k: g for k, g in self.graphs.items() if g.addresses == addresses}
        self.graphs[keys] = _Graph(graph, addresses)
        return self.graphs[keys]
