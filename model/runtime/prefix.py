"""KV-cache operations a session needs, for any transformers ``Cache``, and the prefix file format.

Works through the common interface (``get_seq_length``, ``crop``) plus duck-typed
extras: a cache with ``fork()`` / ``nbytes()`` / ``save()`` (our ``LatentCache``)
uses its own; a ``DynamicCache`` is forked by sharing tensors (its layers
rebind ``keys``/``values`` with ``torch.cat`` and slicing and never write in
place, so sharing is copy-on-write by construction), and saved as per-layer
keys/values in safetensors with the prefix's token ids in the metadata.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import torch

__all__ = ["fork_cache", "cache_bytes", "crop_to", "write_cache", "read_cache", "prefix_name"]


def prefix_name(model_name: str, ids: list[int], keys: list[str | None]) -> str:
    """File stem of a saved prefix: model identity + tokens + media keys (content hash + sampling)."""
    h = hashlib.sha256(model_name.encode())
    h.update(json.dumps([ids, keys]).encode())
    return h.hexdigest()[:32]


def fork_cache(cache: Any) -> Any:
    """A cache sharing ``cache``'s tensors; writes on either side never reach the other."""
    if hasattr(cache, "fork"):
        return cache.fork()
    from transformers import DynamicCache

    if isinstance(cache, DynamicCache):
        # DynamicLayer.update/crop rebind keys/values (torch.cat / slicing) and never
        # write in place, so sharing the tensors is copy-on-write by construction.
        other = copy.copy(cache)
        other.layers = [copy.copy(layer) for layer in cache.layers]
        return other
    return copy.deepcopy(cache)


def cache_bytes(cache: Any) -> int:
    if hasattr(cache, "nbytes"):
        return int(cache.nbytes())
    total = 0
    for layer in getattr(cache, "layers", []):
        for value in vars(layer).values():
            if isinstance(value, torch.Tensor):
                total += value.numel() * value.element_size()
    return total


def crop_to(cache: Any, keep: int) -> None:
    """Keep the first ``keep`` tokens (transformers 5.x ``crop`` takes a count <= 0 to remove)."""
    have = cache.get_seq_length()
    if keep < have:
        cache.crop(keep - have)


def write_cache(cache: Any, path: Path, meta: dict[str, Any]) -> None:
    if hasattr(cache, "save"):  # LatentCache writes its own format
        cache.save(path, metadata=meta)
        return
    from safetensors.torch import save_file

    tensors = {}
    for i, layer in enumerate(cache.layers):
        tensors[f"layers.{i}.keys"] = layer.keys.contiguous()  # (B, kv_heads, T, head_dim)
        tensors[f"layers.{i}.values"] = layer.values.contiguous()
    save_file(tensors, str(path), metadata={"format": "mcr-dynamic-cache/1", "user": json.dumps(meta)})


def read_cache(path: Path, new_cache: Callable[[], Any], device: torch.device | str = "cpu") -> tuple[Any, dict[str, Any]]:
    """Read a saved prefix: ``(cache, metadata)``. ``new_cache()`` makes an empty cache of the model's type."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt", device="cpu") as f:
        fmt = (f.metadata() or {}).get("format")
    if fmt == "mcr-latent-cache/1":
        from mcr.model.m2la.cache import LatentCache

        return LatentCache.load(path, device=device)
    if fmt != "mcr-dynamic-cache/1":
        raise ValueError(f"{path} is not a saved prefix (format {fmt!r}); delete it")
    cache = new_cache()
    with safe_open(str(path), framework="pt", device=str(device)) as f:
        meta = json.loads(f.metadata()["user"])
        n = len([k for k in f.keys() if k.endswith(".keys")])
        for i in range(n):
            cache.update(f.get_tensor(f"layers.{i}.keys"), f.get_tensor(f"layers.{i}.values"), i)
    return cache, meta
