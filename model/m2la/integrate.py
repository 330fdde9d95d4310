"""Put M^2LA into Hugging Face decoders and load InternVideo3-style weights.

``patch_attention`` swaps every text decoder layer's ``self_attn`` for an
:class:`~mcr.model.m2la.M2LAAttention` (Llama family: ``model.layers``;
Qwen3-VL: ``model.language_model.layers``). Everything else — embeddings, the
host's rotary (1-D or interleaved mrope), masks, ``generate`` — stays the
transformers code, so an M^2LA model needs no ``trust_remote_code``.

The M^2LA shape fields are also written onto the text config (TransMLA names)
so ``save_pretrained`` records them and :func:`m2la_config_from_hf` can rebuild
the same model from a converted checkpoint's ``config.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from mcr.model.m2la.attention import M2LAAttention, M2LAConfig

__all__ = [
    "decoder_layers",
    "text_rotary",
    "m2la_config_from_hf",
    "patch_attention",
    "build_m2la_model",
    "load_m2la_state_dict",
    "internvideo3_8b_m2la_config",
    "load_m2la_pretrained",
]

_FIELDS = ("kv_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim", "q_lora_rank",
           "kv_lora_rank_list", "rope_interleave", "qk_latent_layernorm", "rope_freq_index", "softmax_scale",
           "q_bias", "kv_a_bias", "o_bias")


def _text_config(config: Any) -> Any:
    return config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config


def _text_decoder_part(model: nn.Module, name: str, accept: Callable[[Any], bool]) -> Any | None:
    """The text decoder's attribute ``name`` that ``accept`` takes, wherever the host keeps it.

    Qwen3-VL nests its text decoder at ``model.language_model``, Llama-family models at ``model``;
    bare decoders hold it themselves.
    """
    for root in ("model.language_model", "model", "language_model", ""):
        obj: Any = model
        for part in f"{root}.{name}".strip(".").split("."):
            obj = getattr(obj, part, None)
        if obj is not None and accept(obj):
            return obj
    return None


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The text decoder's layer list of a Llama-family or Qwen3-VL model."""
    layers = _text_decoder_part(model, "layers",
                                lambda o: isinstance(o, nn.ModuleList) and len(o) and hasattr(o[0], "self_attn"))
    if layers is None:
        raise ValueError(f"{type(model).__name__}: no text decoder layers with `self_attn` found "
                         "(expected a Llama-family or Qwen3-VL model)")
    return layers


def text_rotary(model: nn.Module) -> nn.Module:
    """The text decoder's rotary embedding (Qwen3-VL: interleaved mrope, same ``inv_freq`` per pair)."""
    rot = _text_decoder_part(model, "rotary_emb", lambda o: hasattr(o, "inv_freq"))
    if rot is None:
        raise ValueError(f"{type(model).__name__}: no text `rotary_emb.inv_freq`; only RoPE decoders convert")
    return rot


def internvideo3_8b_m2la_config(num_hidden_layers: int = 36) -> M2LAConfig:
    """Shapes of the public InternVideo3-8B M^2LA attention (issue #6 facts)."""
    return M2LAConfig(hidden_size=4096, num_attention_heads=32, kv_lora_rank=896, qk_rope_head_dim=128,
                      qk_nope_head_dim=128, v_head_dim=128, rope_interleave=True, qk_latent_layernorm=False,
                      q_bias=True, kv_a_bias=True, o_bias=False, num_hidden_layers=num_hidden_layers)


def m2la_config_from_hf(config: Any, **overrides: Any) -> M2LAConfig:
    """M^2LA shapes from a HF (text) config carrying TransMLA fields, plus ``overrides``.

    Raises:
        ValueError: if ``kv_lora_rank`` / ``qk_rope_head_dim`` are neither on the
            config nor given, naming the missing fields.
    """
    tc = _text_config(config)
    d: dict[str, Any] = {k: getattr(tc, k) for k in _FIELDS if getattr(tc, k, None) is not None}
    d.update(overrides)
    head_dim = getattr(tc, "head_dim", None) or tc.hidden_size // tc.num_attention_heads
    d.setdefault("qk_nope_head_dim", head_dim)
    d.setdefault("v_head_dim", head_dim)
    missing = [k for k in ("kv_lora_rank", "qk_rope_head_dim") if k not in d]
    if missing:
        raise ValueError(f"{type(tc).__name__} has no M^2LA fields {missing}; pass them as overrides "
                         "or convert the model first (mcr.model.m2la.convert)")
    return M2LAConfig(hidden_size=tc.hidden_size, num_attention_heads=tc.num_attention_heads,
                      num_hidden_layers=tc.num_hidden_layers, **d)


def patch_attention(model: nn.Module, m2la: M2LAConfig) -> nn.Module:
    """Replace every text decoder ``self_attn`` with ``M2LAAttention`` (new, uninitialised weights).

    The host rotary must cover the decoupled channel: every ``rope_freq_index``
    must be below the host head_dim / 2.
    """
    tc = _text_config(model.config)
    if m2la.hidden_size != tc.hidden_size:
        raise ValueError(f"M2LAConfig.hidden_size={m2la.hidden_size} but the model has {tc.hidden_size}")
    host_pairs = (getattr(tc, "head_dim", None) or tc.hidden_size // tc.num_attention_heads) // 2
    layers = decoder_layers(model)
    for i, layer in enumerate(layers):
        if max(m2la.freq_index(i), default=0) >= host_pairs:
            raise ValueError(f"layer {i}: rope_freq_index needs frequency {max(m2la.freq_index(i))} but the "
                             f"host rotary has {host_pairs} pairs (head_dim {2 * host_pairs})")
        old = layer.self_attn
        p = next(old.parameters(), None)
        new = M2LAAttention(m2la, layer_idx=i)
        if p is not None:
            new.to(device=p.device, dtype=p.dtype)
        layer.self_attn = new
    for k in _FIELDS:
        setattr(tc, k, getattr(m2la, k))
    tc.m2la = True
    return model


def build_m2la_model(config: Any, m2la: M2LAConfig | None = None, dtype: torch.dtype = torch.float32) -> nn.Module:
    """Instantiate a HF model from ``config`` (Llama-family or Qwen3-VL) with M^2LA attention.

    Args:
        config: a transformers config (``LlamaConfig``, ``Qwen3VLConfig``, …).
        m2la: attention shapes; default: read TransMLA fields from ``config``.
    """
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    m2la = m2la or m2la_config_from_hf(config)
    if getattr(config, "vision_config", None) is not None:
        model = AutoModelForImageTextToText.from_config(config, dtype=dtype)
    else:
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return patch_attention(model, m2la).eval()


def load_m2la_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], strict: bool = True) -> None:
    """Load an InternVideo3-style state dict (``model.language_model.layers.{i}.self_attn.*``).

    Raises:
        ValueError: with the missing / unexpected keys (first few) when ``strict``.
    """
    res = model.load_state_dict(dict(state_dict), strict=False)
    missing = [k for k in res.missing_keys if not k.endswith("rope_freq_index")]
    if strict and (missing or res.unexpected_keys):
        raise ValueError(f"state dict does not match the M^2LA model: {len(missing)} missing "
                         f"{missing[:5]}, {len(res.unexpected_keys)} unexpected {res.unexpected_keys[:5]}")


def load_m2la_pretrained(path: str, dtype: torch.dtype = torch.float32) -> nn.Module:
    """Load a folder written by ``save_pretrained`` of an M^2LA model (e.g. ``mcr convert --out``).

    The config's TransMLA fields rebuild the attention; weights load strictly, so a
    checkpoint that does not match its config fails loudly instead of running half-random.
    """
    from pathlib import Path

    from safetensors.torch import load_file
    from transformers import AutoConfig

    files = sorted(Path(path).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{path}: no *.safetensors weights")
    model = build_m2la_model(AutoConfig.from_pretrained(path), dtype=dtype)
    sd: dict[str, torch.Tensor] = {}
    for f in files:
        sd.update(load_file(str(f)))
    if "lm_head.weight" not in sd and getattr(model.config, "tie_word_embeddings", False):
        sd["lm_head.weight"] = sd[next(k for k in sd if k.endswith("embed_tokens.weight"))]
    load_m2la_state_dict(model, sd)
    return model.to(dtype)
