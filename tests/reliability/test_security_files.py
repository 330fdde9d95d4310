"""Files the framework reads back (saved prefixes, tool caches, checkpoints) cannot carry code or lies.

A workdir is shared and copied around, so anything in it may have been
swapped. Saved prefixes are safetensors only and are checked before a tensor
reaches the cache: a pickle, a file whose name is not the hash of what it
holds, tensors of the wrong shape or a layer too many are each refused with a
:class:`PrefixFileError` naming the file. A tool cache entry that is not the
JSON it should be is a miss (the tool runs again), never an exception. A SAM
checkpoint with pickled code is refused with a typed ToolFailure. In every
case the payload's marker file stays absent: nothing ran.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil

import pytest
import torch
from pydantic import BaseModel
from safetensors import safe_open
from safetensors.torch import save_file

from mcr.model.runtime.loader import load_model
from mcr.model.runtime.prefix import PrefixFileError
from mcr.model.runtime.session import ModelSession
from mcr.model.runtime.tiny import save_tiny_qwen3vl
from mcr.tools.cache import ResultCache
from mcr.tools.errors import ToolFailure

MESSAGES = [{"role": "user", "content": "hello"}]
LATER = MESSAGES + [{"role": "assistant", "content": "hi"}, {"role": "user", "content": "and?"}]


class Payload:
    """Unpickling this runs a shell command that creates `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_model(save_tiny_qwen3vl(tmp_path_factory.mktemp("tiny")), dtype="float32")


@pytest.fixture
def saved(tiny, tmp_path):
    """A real saved prefix of MESSAGES and a second, of another prompt, in the same folder."""
    saver = ModelSession(tiny, prefix_dir=tmp_path)
    saver.next_token_logits(MESSAGES)
    path = saver.save_prefix()
    other = ModelSession(tiny, prefix_dir=tmp_path)
    other.next_token_logits([{"role": "user", "content": "something else entirely"}])
    return path, other.save_prefix()


def _tensors(path):
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def _rewrite(path, change):
    tensors, meta = _tensors(path)
    tensors, meta = change(dict(tensors), dict(meta))
    save_file(tensors, str(path), metadata=meta)


def _edit_ids(meta):
    user = json.loads(meta["user"])
    user["ids"] = [user["ids"][0] + 1, *user["ids"][1:]]
    return {**meta, "user": json.dumps(user)}


TAMPERS = {
    "a pickle with code in place of the file":
        lambda path, marker, other: path.write_bytes(pickle.dumps(Payload(marker))),
    "a torch.save zip (pickle inside) in place of the file":
        lambda path, marker, other: torch.save({"x": Payload(marker)}, str(path)),
    "truncated":
        lambda path, marker, other: path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2]),
    "another prefix's file under this name (wrong hash)":
        lambda path, marker, other: shutil.copyfile(other, path),
    "token ids edited in the metadata (wrong hash)":
        lambda path, marker, other: _rewrite(path, lambda t, m: (t, _edit_ids(m))),
    "metadata not JSON":
        lambda path, marker, other: _rewrite(path, lambda t, m: (t, {**m, "user": "{not json"})),
    "keys of the wrong shape (a head dropped)":
        lambda path, marker, other: _rewrite(path, lambda t, m: ({**t, "layers.0.keys": t["layers.0.keys"][:, :-1]}, m)),
    "keys and values for fewer tokens than the name says":
        lambda path, marker, other: _rewrite(path, lambda t, m: ({k: v[:, :, :-1].contiguous() for k, v in t.items()}, m)),
    "a layer missing":
        lambda path, marker, other: _rewrite(path, lambda t, m: ({k: v for k, v in t.items() if not k.startswith("layers.0.")}, m)),
    "a layer too many":
        lambda path, marker, other: _rewrite(path, lambda t, m: ({**t, "layers.99.keys": t["layers.0.keys"].clone(),
                                                                  "layers.99.values": t["layers.0.values"].clone()}, m)),
    "an extra tensor":
        lambda path, marker, other: _rewrite(path, lambda t, m: ({**t, "evil": torch.zeros(3)}, m)),
    "another format":
        lambda path, marker, other: _rewrite(path, lambda t, m: (t, {**m, "format": "pickle"})),
}


def test_an_intact_prefix_is_used(tiny, saved):
    session = ModelSession(tiny, prefix_dir=saved[0].parent, use_saved_prefixes=True)
    session.next_token_logits(LATER)
    assert session.last_usage.prefix_loaded_tokens > 0


@pytest.mark.parametrize("how", list(TAMPERS))
def test_a_tampered_prefix_is_refused(tiny, saved, tmp_path, ledger, how):
    path, other = saved
    marker = tmp_path / "payload-ran"
    TAMPERS[how](path, marker, other)
    session = ModelSession(tiny, prefix_dir=path.parent, use_saved_prefixes=True)
    with pytest.raises(PrefixFileError) as err:
        session.next_token_logits(LATER)
    assert str(path) in str(err.value) and "delete it" in str(err.value)
    assert not marker.exists()
    ledger.case("security", f"saved prefix: {how}", outcome="PrefixFileError; nothing loaded or run", message=str(err.value))


class Out(BaseModel):
    value: int


CACHE_TAMPERS = {
    "a pickle with code": lambda marker: pickle.dumps(Payload(marker)),
    "random bytes": lambda marker: os.urandom(64),
    "JSON nested 100,000 deep": lambda marker: b"[" * 100_000 + b"]" * 100_000,
    "JSON of another shape": lambda marker: json.dumps({"value": "not a number", "x": [1]}).encode(),
    "JSON that is not an object": lambda marker: b"7",
    "empty": lambda marker: b"",
}


@pytest.mark.parametrize("how", list(CACHE_TAMPERS))
def test_a_tampered_tool_cache_entry_is_a_miss(tmp_path, ledger, how):
    marker = tmp_path / "payload-ran"
    cache = ResultCache(tmp_path / "cache")
    key = cache.key("segment", None, (1.0, 2.0), {"mode": "temporal"})
    cache.put(key, Out(value=3))
    (file,) = (tmp_path / "cache").rglob("*.json")
    file.write_bytes(CACHE_TAMPERS[how](marker))
    fresh = ResultCache(tmp_path / "cache")
    assert fresh.get(key, Out) is None
    assert fresh.get_or_compute(key, Out, lambda: Out(value=4)) == Out(value=4)  # recomputed and stored again
    assert ResultCache(tmp_path / "cache").get(key, Out) == Out(value=4)
    assert not marker.exists()
    ledger.case("security", f"tool cache entry: {how}", outcome="a miss: the tool runs again; nothing ran")


def test_a_sam_checkpoint_with_pickled_code_is_refused(tmp_path, ledger):
    pytest.importorskip("segment_anything")
    from mcr.tools.masks import MaskPredictor

    marker = tmp_path / "payload-ran"
    checkpoint = tmp_path / "sam_vit_b.pth"
    torch.save({"image_encoder.patch_embed.proj.weight": Payload(marker)}, str(checkpoint))
    with pytest.raises(ToolFailure) as err:
        MaskPredictor.load("vit_b", str(checkpoint), allow_random=False)
    assert err.value.error_type == "sam_checkpoint_invalid" and str(checkpoint) in str(err.value)
    assert not marker.exists()
    ledger.case("security", "SAM checkpoint with pickled code", outcome="ToolFailure sam_checkpoint_invalid; nothing ran",
                message=str(err.value))
