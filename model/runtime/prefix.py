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
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch

from mcr.window import ContextExhausted

if TYPE_CHECKING:
    from mcr.model.runtime.prompt import Prompt

__all__ = ["SavedPrefixes", "SessionError", "ContextOverflow", "PrefixFileError", "fork_cache", "cache_bytes", "crop_to", "write_cache",
           "read_cache", "prefix_name"]


class SessionError(RuntimeError):
    """The session cannot run a call (e.g. a prompt longer than the model's window, nothing to save)."""


class ContextOverflow(SessionError, ContextExhausted):
    """A prompt longer than the model's window. The loop ends the episode with stop reason
    ``context_exhausted`` (:mod:`mcr.window`); a tool's side query that overflows is that tool's error."""


class PrefixFileError(ValueError):
    """A saved prefix file is not ours, damaged or tampered with (not safetensors, a name that does not
    hash its content, tensors of the wrong shape). It is never loaded; the message says to delete it."""


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


def read_cache(path: Path, new_cache: Callable[[], Any], device: torch.device | str = "cpu",
               geometry: dict[str, int | None] | None = None) -> tuple[Any, dict[str, Any]]:
    """Read a saved prefix: ``(cache, metadata)``. ``new_cache()`` makes an empty cache of the model's type.

    The file is checked before any tensor reaches the cache: it must be safetensors (never a pickle),
    its name must be the hash of the model, tokens and media keys it holds (:func:`prefix_name`), and
    each layer must have the shape of the model's cache for that many tokens (``geometry``: ``layers``,
    ``kv_heads``, ``head_dim`` of the model; None skips a check).

    Raises:
        PrefixFileError: (a ValueError) the file fails one of those checks.
    """
    from safetensors import SafetensorError, safe_open

    def refuse(why: str) -> PrefixFileError:
        return PrefixFileError(f"{path} is not a saved prefix this session can use: {why}; delete it (it is "
                               "re-created on the next save)")

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            shapes = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise refuse(f"not a safetensors file ({type(exc).__name__}: {exc}); prefixes are only ever safetensors") from None
    fmt = header.get("format")
    if fmt not in ("mcr-dynamic-cache/1", "mcr-latent-cache/1"):
        raise refuse(f"format {fmt!r}") from None
    try:
        meta = json.loads(header["user"])
        ids, keys, model = meta["ids"], meta["keys"], meta["model"]
        named = prefix_name(model, ids, keys)
    except (KeyError, TypeError, ValueError, RecursionError):
        raise refuse("its metadata (tokens, media keys, model) is missing or malformed") from None
    if not (isinstance(ids, list) and isinstance(keys, list) and len(ids) == len(keys)):
        raise refuse("its token ids and media keys do not line up")
    if named != path.stem:
        raise refuse("its name is not the hash of its model, tokens and media: the file was replaced or edited")
    geometry = geometry or {}
    layers = geometry.get("layers")
    if fmt == "mcr-latent-cache/1":
        from mcr.model.m2la.cache import LatentCache

        try:
            cache, meta = LatentCache.load(path, device=device)
        except (KeyError, TypeError, ValueError, AttributeError, SafetensorError) as exc:
            raise refuse(f"a damaged latent cache ({type(exc).__name__}: {exc})") from None
        if layers is not None and len(cache.layers) != layers:
            raise refuse(f"{len(cache.layers)} layers, the model has {layers}")
        if any(layer.is_initialized and layer.length != len(ids) for layer in cache.layers):
            raise refuse(f"a layer does not hold {len(ids)} tokens")
        return cache, meta
    n = len([k for k in shapes if k.endswith(".keys")])
    want = {f"layers.{i}.{part}" for i in range(n) for part in ("keys", "values")}
    if set(shapes) != want or (layers is not None and n != layers):
        raise refuse(f"tensors {sorted(shapes)[:4]}... are not the {layers or n} layers of keys and values of a cache")
    for i in range(n):
        k, v = shapes[f"layers.{i}.keys"], shapes[f"layers.{i}.values"]
        expected = (geometry.get("kv_heads"), len(ids), geometry.get("head_dim"))
        ok = len(k) == 4 and len(v) == 4 and k[:3] == v[:3] and all(
            want_dim is None or got == want_dim for got, want_dim in zip(k[1:], expected))
        if not ok:
            raise refuse(f"layer {i} keys {k} / values {v} are not (batch, {expected[0]}, {len(ids)}, {expected[2]})")
    cache = new_cache()
    with safe_open(str(path), framework="pt", device=str(device)) as f:
        for i in range(n):
            cache.update(f.get_tensor(f"layers.{i}.keys"), f.get_tensor(f"layers.{i}.values"), i)
    return cache, meta


def cache_geometry(config: Any) -> dict[str, int | None]:
    """The model's cache shape: layers, key/value heads, head size (None where the config does not say)."""
    text = config.get_text_config(decoder=True)
    heads = getattr(text, "num_attention_heads", None)
    hidden = getattr(text, "hidden_size", None)
    head_dim = getattr(text, "head_dim", None) or (hidden // heads if hidden and heads else None)
    return {"layers": getattr(text, "num_hidden_layers", None),
            "kv_heads": getattr(text, "num_key_value_heads", None) or heads, "head_dim": head_dim}


class SavedPrefixes:
    """Saving and finding cached prefixes on disk: the part of :class:`ModelSession` that persists.

    A mixin: it works on the session's ``state`` (token ids, media keys,
    positions), ``cache``, ``loaded``, ``renderer``, ``prefix_dir`` and
    ``eos_ids``, and keeps the file format in this module with the cache
    operations it needs.
    """

    def message_ends(self, ids: list[int] | None = None) -> list[int]:
        """Token counts at each message end (just after EOS / ``<|im_end|>``) of ``ids``
        (default: the cached tokens): the cut points where prefixes are saved and found."""
        ids = self.state.ids if ids is None else ids
        return [i + 1 for i, t in enumerate(ids) if t in self.eos_ids]

    def save_prefix(self, upto: int | None = None) -> Path:
        """Persist the cache of the first ``upto`` cached tokens (safetensors).

        By default: up to the end of the message holding the last media item
        (the video prefix), or of the last complete message if there is no media.
        The file is named by a hash of the model, the prefix tokens and the
        media keys (file content hash + sampling settings), so the same video,
        settings and model find it again.

        Returns:
            The path of the ``.safetensors`` file written.
        """
        cuts = [c for c in self.message_ends(self.state.ids) if c <= len(self.state.ids)]
        if upto is None:
            media_end = max((i + 1 for i, k in enumerate(self.state.keys) if k is not None), default=0)
            after = [c for c in cuts if c >= media_end]
            if not cuts or not after:
                raise SessionError("nothing to save: no complete message is in the cache yet")
            upto = after[0] if media_end else cuts[-1]
        if not 0 < upto <= len(self.state.ids):
            raise SessionError(f"save_prefix(upto={upto}): the cache holds {len(self.state.ids)} tokens")
        ids, keys = self.state.ids[:upto], self.state.keys[:upto]
        self.prefix_dir.mkdir(parents=True, exist_ok=True)
        path = self.prefix_dir / f"{prefix_name(self.loaded.name, ids, keys)}.safetensors"
        snapshot = fork_cache(self.cache)
        crop_to(snapshot, upto)
        meta = {"ids": ids, "keys": keys, "model": self.loaded.name}
        if self.state.positions is not None:
            meta["positions"] = self.state.positions[:, :upto].tolist()
        tmp = path.with_suffix(f".tmp{time.monotonic_ns()}")
        write_cache(snapshot, tmp, meta)
        tmp.replace(path)
        self.renderer.remember_media(self.prefix_dir)
        return path

    def load_prefix(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int:
        """Load the longest saved prefix of ``messages``' prompt; returns its token count (0: none)."""
        return self._try_load_prefix(self.render(messages, tools), better_than=0)

    def _try_load_prefix(self, prompt: Prompt, better_than: int) -> int:
        for cut in sorted(self.message_ends(prompt.ids), reverse=True):
            if cut <= better_than:
                return 0
            path = self.prefix_dir / f"{prefix_name(self.loaded.name, prompt.ids[:cut], prompt.keys[:cut])}.safetensors"
            if path.is_file():
                self.cache, meta = read_cache(path, self._new_cache, self.device, cache_geometry(self.model.config))
                positions = meta.get("positions")
                self.state = type(self.state)(
                    list(meta["ids"]), list(meta["keys"]), torch.tensor(positions) if positions is not None else None
                )
                return cut
        return 0
