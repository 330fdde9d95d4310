"""M^2LA: multi-head latent attention with a decoupled (multimodal) RoPE key.

Per token and layer the cache holds one compressed latent ``c`` (``kv_lora_rank``
values) plus one RoPE key shared by all heads (``qk_rope_head_dim`` values),
instead of every KV head's keys and values. Per-head keys/values are
``kv_b_proj(c)``.

Two mathematically identical paths:

* **naive** (prefill, and the test oracle): reconstruct per-head ``k_nope``/``v``
  from the latent and run ordinary attention;
* **absorbed** (decode): fold ``W_UK`` into the query so scores are taken
  directly against the cached latent, attend over the latent, then apply
  ``W_UV``. No per-head K/V is ever materialised, which is what makes long
  contexts cheap.

Parameter names match the public InternVideo3 checkpoint (``q_proj``,
``kv_a_proj_with_mqa``, ``kv_b_proj``, ``o_proj``, optional ``kv_a_layernorm``).
The module is a drop-in for the ``self_attn`` of Hugging Face Llama-family and
Qwen3-VL decoder layers: it takes the host model's ``position_embeddings``
(cos, sin of the host's full head_dim, 1-D or interleaved mrope) and applies
the selected frequencies to the decoupled channel only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["M2LAConfig", "M2LAAttention", "apply_decoupled_rope", "rope_cos_sin"]


@dataclass
class M2LAConfig:
    """Shapes of one M^2LA attention stack (TransMLA-style field names).

    Args:
        hidden_size: model width.
        num_attention_heads: query heads (every head reads the shared latent).
        kv_lora_rank: latent width cached per token (default for every layer).
        qk_rope_head_dim: width of the decoupled RoPE key shared by all heads.
        qk_nope_head_dim: per-head query/key width without position.
        v_head_dim: per-head value width.
        q_lora_rank: if set, queries go through a low-rank ``q_a_proj``/``q_b_proj``.
        kv_lora_rank_list: optional per-layer latent widths (overrides kv_lora_rank).
        rope_interleave: the RoPE channel stores pairs adjacently (x0, x1), (x2, x3)…
            (the public checkpoint does); otherwise first half / second half.
        qk_latent_layernorm: RMS-normalise the latent (``kv_a_layernorm``) before caching.
        rope_freq_index: which of the host rotary's frequency pairs each of the
            ``qk_rope_head_dim // 2`` pairs uses; one list for all layers or one
            per layer. ``None`` means ``0 .. qk_rope_head_dim//2 - 1`` (the
            8B checkpoint's 128-d channel uses all 64 frequencies of head_dim 128).
            Conversions may repeat a frequency: several shared components can
            rotate at the same frequency.
        softmax_scale: ``None`` means ``(qk_nope_head_dim + qk_rope_head_dim) ** -0.5``.
        q_bias / kv_a_bias / o_bias: linear biases (checkpoint: True, True, False).
        rms_norm_eps: epsilon of the latent norm.
        absorb_max_q: queries of at most this length use the absorbed path; ``None``
            picks the crossover of the two paths' MAC counts (naive re-expands the
            whole cache, ``S*r*H*(dn+dv)``; absorbed pays ``S*T*H*(2r+dr)``), so a
            session's short delta over a long cache is not re-expanded: 149 tokens
            at the 8B shapes.
        num_hidden_layers: needed only to validate kv_lora_rank_list / rope_freq_index.
    """

    hidden_size: int
    num_attention_heads: int
    kv_lora_rank: int
    qk_rope_head_dim: int
    qk_nope_head_dim: int
    v_head_dim: int
    q_lora_rank: int | None = None
    kv_lora_rank_list: list[int] | None = None
    rope_interleave: bool = True
    qk_latent_layernorm: bool = False
    rope_freq_index: list[int] | list[list[int]] | None = None
    softmax_scale: float | None = None
    q_bias: bool = True
    kv_a_bias: bool = True
    o_bias: bool = False
    rms_norm_eps: float = 1e-6
    absorb_max_q: int | None = None
    num_hidden_layers: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_attention_heads", "kv_lora_rank", "v_head_dim"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"M2LAConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.qk_rope_head_dim < 0 or self.qk_rope_head_dim % 2:
            raise ValueError(f"M2LAConfig.qk_rope_head_dim must be even and >= 0, got {self.qk_rope_head_dim}")
        if self.qk_nope_head_dim < 0 or self.qk_nope_head_dim + self.qk_rope_head_dim == 0:
            raise ValueError("M2LAConfig: qk_nope_head_dim + qk_rope_head_dim must be > 0")
        if self.q_lora_rank is not None and self.q_lora_rank <= 0:
            raise ValueError(f"M2LAConfig.q_lora_rank must be > 0 or None, got {self.q_lora_rank}")
        n = self.num_hidden_layers
        if self.kv_lora_rank_list is not None:
            if n is not None and len(self.kv_lora_rank_list) != n:
                raise ValueError(f"kv_lora_rank_list has {len(self.kv_lora_rank_list)} entries for {n} layers")
            if any(int(r) <= 0 for r in self.kv_lora_rank_list):
                raise ValueError("kv_lora_rank_list entries must be > 0")
        idx = self.rope_freq_index
        if idx is not None and len(idx) > 0:
            per_layer = idx if isinstance(idx[0], list) else [idx]
            if isinstance(idx[0], list) and n is not None and len(idx) != n:
                raise ValueError(f"rope_freq_index has {len(idx)} layer entries for {n} layers")
            for row in per_layer:
                if len(row) != self.qk_rope_head_dim // 2:
                    raise ValueError(
                        f"rope_freq_index rows need qk_rope_head_dim // 2 = {self.qk_rope_head_dim // 2} "
                        f"entries, got {len(row)}"
                    )

    # -- per-layer views -------------------------------------------------
    def rank(self, layer_idx: int) -> int:
        """Latent width of layer ``layer_idx``."""
        if self.kv_lora_rank_list is not None:
            return int(self.kv_lora_rank_list[layer_idx])
        return self.kv_lora_rank

    def freq_index(self, layer_idx: int) -> list[int]:
        """Host-rotary frequency pair used by each decoupled RoPE pair of ``layer_idx``."""
        idx = self.rope_freq_index
        if idx is None or len(idx) == 0:
            return list(range(self.qk_rope_head_dim // 2))
        return list(idx[layer_idx] if isinstance(idx[0], list) else idx)

    @property
    def scale(self) -> float:
        return self.softmax_scale if self.softmax_scale is not None else (
            self.qk_nope_head_dim + self.qk_rope_head_dim) ** -0.5

    def cache_values_per_token(self, layer_idx: int = 0) -> int:
        """Values cached per token for one layer: latent + shared RoPE key."""
        return self.rank(layer_idx) + self.qk_rope_head_dim

    # -- (de)serialisation ----------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "M2LAConfig":
        """Build from a dict (e.g. a converted checkpoint's config.json); unknown keys go to ``extra``."""
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in d.items() if k in names and k != "extra"}
        try:
            return cls(**known, extra={k: v for k, v in d.items() if k not in names})
        except TypeError as e:  # missing required field
            raise ValueError(f"M2LAConfig.from_dict: {e}") from None

    @classmethod
    def from_json(cls, path: str) -> "M2LAConfig":
        with open(path) as f:
            return cls.from_dict(json.load(f))


def rope_cos_sin(
    position_ids: torch.Tensor, inv_freq: torch.Tensor, mrope_section: list[int] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of per-pair angles, in the host-rotary layout ``cat(freqs, freqs)``.

    Args:
        position_ids: ``(B, T)`` for 1-D RoPE or ``(3, B, T)`` (t, h, w) for mrope.
        inv_freq: ``(D/2,)`` inverse frequencies of the host head_dim D.
        mrope_section: e.g. ``[24, 20, 20]``; interleaved assignment: pair ``i``
            takes its position from h if ``i % 3 == 1`` and ``i < 3*sec[1]``,
            from w if ``i % 3 == 2`` and ``i < 3*sec[2]``, else from t.
    Returns:
        cos, sin of shape ``(B, T, D)``.
    """
    freqs = position_ids[..., None].float() * inv_freq.float()  # (..., B, T, D/2)
    if mrope_section is not None:
        if position_ids.dim() == 2:
            freqs = freqs.unsqueeze(0).expand(3, *freqs.shape)
        axis = torch.zeros(inv_freq.shape[0], dtype=torch.long, device=freqs.device)  # (D/2,)
        for a in (1, 2):
            axis[a : 3 * mrope_section[a] : 3] = a
        freqs = freqs.gather(0, axis.view(1, 1, 1, -1).expand(1, *freqs.shape[1:]))[0]  # (B, T, D/2)
    emb = torch.cat((freqs, freqs), dim=-1)  # (B, T, D)
    return emb.cos(), emb.sin()


def apply_decoupled_rope(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, freq_index: torch.Tensor, interleave: bool
) -> torch.Tensor:
    """Rotate the decoupled RoPE channel ``x`` with selected host frequencies.

    Args:
        x: ``(B, Hx, T, d_rope)`` query or key RoPE channel.
        cos, sin: ``(B, T, D)`` host rotary output (``cat(freqs, freqs)`` layout).
        freq_index: ``(d_rope/2,)`` which host frequency pair each RoPE pair uses.
        interleave: pairs are adjacent (x0,x1),(x2,x3)… instead of half-split.
    Returns:
        ``(B, Hx, T, d_rope)``, de-interleaved layout ``[rot(a), rot(b)]`` (q and k
        always use the same layout, so scores are unaffected).
    """
    c = cos[..., freq_index].unsqueeze(1)  # (B, 1, T, d_rope/2)
    s = sin[..., freq_index].unsqueeze(1)
    if interleave:
        a, b = x[..., 0::2], x[..., 1::2]  # (B, Hx, T, d_rope/2)
    else:
        a, b = x.chunk(2, dim=-1)
    return torch.cat((a * c - b * s, b * c + a * s), dim=-1).to(x.dtype)


class _RMSNorm(nn.Module):
    """RMSNorm with the HF parameter name ``weight`` (matches ``kv_a_layernorm.weight``)."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return self.weight * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)


class M2LAAttention(nn.Module):
    """Latent attention layer; drop-in ``self_attn`` of HF Llama / Qwen3-VL decoders.

    ``forward`` follows the HF attention signature and returns ``(output, None)``.
    With a cache, it writes the latent and the rotated RoPE key via
    ``cache.update(latent, k_rope, layer_idx)``, so any transformers ``Cache``
    works (``DynamicCache`` stores them as single-head keys/values); our
    :class:`~mcr.model.m2la.cache.LatentCache` additionally hands back one joint
    buffer for the absorbed path.
    """

    def __init__(self, config: M2LAConfig, layer_idx: int = 0) -> None:
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.rank = config.rank(layer_idx)
        self.d_nope, self.d_rope, self.d_v = config.qk_nope_head_dim, config.qk_rope_head_dim, config.v_head_dim
        self.q_head_dim = self.d_nope + self.d_rope
        self.scaling = config.scale
        self.is_causal = True
        self.path: Literal["auto", "naive", "absorbed"] = "auto"
        # How the absorbed path attends: one SDPA call (GPU kernels), or two matmuls (faster on the CPU).
        self.kernel: Literal["auto", "sdpa", "matmul"] = "auto"
        self.absorb_max_q = config.absorb_max_q
        if self.absorb_max_q is None:
            extra = 2 * self.rank - self.d_nope - self.d_v  # absorbed minus naive MACs per (query, key, head)
            self.absorb_max_q = self.rank * (self.d_nope + self.d_v) // extra if extra > 0 else 1 << 30
        h, hd = config.hidden_size, self.num_heads * self.q_head_dim
        if config.q_lora_rank is None:
            self.q_proj = nn.Linear(h, hd, bias=config.q_bias)
        else:
            self.q_a_proj = nn.Linear(h, config.q_lora_rank, bias=config.q_bias)
            self.q_a_layernorm = _RMSNorm(config.q_lora_rank, config.rms_norm_eps)
            self.q_b_proj = nn.Linear(config.q_lora_rank, hd, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(h, self.rank + self.d_rope, bias=config.kv_a_bias)
        if config.qk_latent_layernorm:
            self.kv_a_layernorm = _RMSNorm(self.rank, config.rms_norm_eps)
        self.kv_b_proj = nn.Linear(self.rank, self.num_heads * (self.d_nope + self.d_v), bias=False)
        self.o_proj = nn.Linear(self.num_heads * self.d_v, h, bias=config.o_bias)
        self.register_buffer(
            "rope_freq_index", torch.tensor(config.freq_index(layer_idx), dtype=torch.long), persistent=False
        )

    # -- projections -----------------------------------------------------
    def _queries(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, _ = x.shape
        q = self.q_proj(x) if self.config.q_lora_rank is None else self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x)))
        q = q.view(B, T, self.num_heads, self.q_head_dim).transpose(1, 2)  # (B, H, T, dn + dr)
        return q.split([self.d_nope, self.d_rope], dim=-1)  # (B, H, T, dn), (B, H, T, dr)

    def compress(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent and un-rotated shared RoPE key of ``x`` (B, T, hidden)."""
        c, k_rope = self.kv_a_proj_with_mqa(x).split([self.rank, self.d_rope], dim=-1)  # (B, T, r), (B, T, dr)
        if self.config.qk_latent_layernorm:
            c = self.kv_a_layernorm(c)
        return c, k_rope

    def _w_kv_b(self) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.kv_b_proj.weight.view(self.num_heads, self.d_nope + self.d_v, self.rank)  # (H, dn + dv, r)
        return w[:, : self.d_nope], w[:, self.d_nope :]  # W_UK (H, dn, r), W_UV (H, dv, r)

    # -- forward ---------------------------------------------------------
    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None = None,
        cache: Any = None,
        past_key_values: Any = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, None]:
        """Args: hidden_states ``(B, T, hidden)``; position_embeddings host ``(cos, sin)``
        each ``(B, T, D)``; attention_mask additive float or boolean ``(B, 1, T, S)`` or None
        (then causal, bottom-right aligned); cache: any transformers ``Cache``."""
        cache = cache if cache is not None else past_key_values
        B, T, _ = hidden_states.shape
        cos, sin = position_embeddings
        q_nope, q_rope = self._queries(hidden_states)
        c, k_rope = self.compress(hidden_states)
        fi, il = self.rope_freq_index, self.config.rope_interleave
        q_rope = apply_decoupled_rope(q_rope, cos, sin, fi, il)  # (B, H, T, dr)
        k_rope = apply_decoupled_rope(k_rope.unsqueeze(1), cos, sin, fi, il)  # (B, 1, T, dr)
        c = c.unsqueeze(1)  # (B, 1, T, r)
        joint = None
        if cache is not None:
            if hasattr(cache, "update_joint"):
                joint = cache.update_joint(c, k_rope, self.layer_idx)  # (B, S, r + dr)
                c, k_rope = joint[..., : self.rank].unsqueeze(1), joint[..., self.rank :].unsqueeze(1)
            else:
                c, k_rope = cache.update(c, k_rope, self.layer_idx)  # (B, 1, S, r), (B, 1, S, dr)
        static_mask = getattr(cache, "static_mask", None)  # a static decode step (CUDA graphs) brings its own
        if static_mask is not None:
            mask = static_mask
        else:
            mask = _additive_mask(attention_mask, B, T, c.shape[-2], q_nope.dtype, q_nope.device)  # (B, 1, T, S)
        absorbed = self.path == "absorbed" or (self.path == "auto" and T <= self.absorb_max_q)
        if absorbed:
            out = self._absorbed(q_nope, q_rope, c[:, 0], k_rope[:, 0], mask, joint)
        else:
            out = self._naive(q_nope, q_rope, c[:, 0], k_rope, mask)
        return self.o_proj(out.transpose(1, 2).reshape(B, T, self.num_heads * self.d_v)), None

    def _naive(self, q_nope, q_rope, c, k_rope, mask) -> torch.Tensor:
        """Reconstruct per-head K/V from the latent; the oracle. Returns ``(B, H, T, dv)``."""
        B, S, _ = c.shape
        kv = self.kv_b_proj(c).view(B, S, self.num_heads, self.d_nope + self.d_v).transpose(1, 2)  # (B, H, S, dn+dv)
        k_nope, v = kv.split([self.d_nope, self.d_v], dim=-1)  # (B, H, S, dn), (B, H, S, dv)
        q = torch.cat((q_nope, q_rope), dim=-1)  # (B, H, T, dn + dr)
        k = torch.cat((k_nope, k_rope.expand(-1, self.num_heads, -1, -1)), dim=-1)  # (B, H, S, dn + dr)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scaling)  # (B, H, T, dv)

    def _absorbed(self, q_nope, q_rope, c, k_rope, mask, joint) -> torch.Tensor:
        """Attend over the cached latent directly (W_UK into q, W_UV after). Returns ``(B, H, T, dv)``.

        This is a **single-latent-head attention**: all heads share one key and one
        value (the latent), so the H*T queries are rows of one head and the cache
        is read once for all of them. The key is the joint ``[latent | rope key]``
        row (the RoPE key rides along).
        """
        B, H, T, _ = q_nope.shape
        w_uk, w_uv = self._w_kv_b()
        q_lat = torch.einsum("bhtd,hdr->bhtr", q_nope, w_uk)  # (B, H, T, r)
        q = torch.cat((q_lat, q_rope), dim=-1).reshape(B, 1, H * T, self.rank + self.d_rope)  # (B, 1, H*T, r+dr)
        if joint is None:
            joint = torch.cat((c, k_rope), dim=-1)  # (B, S, r + dr)
        if mask is not None:
            mask = mask.expand(B, 1, T, -1).repeat(1, 1, H, 1)  # rows ordered (head, t)
        kernel = self.kernel if self.kernel != "auto" else ("matmul" if q.device.type == "cpu" else "sdpa")
        if kernel == "sdpa":
            # The value is *the same joint buffer* (no per-step copy of a strided latent view); the dr RoPE
            # columns of the output are dropped (11% extra output at the 8B shapes). SDPA picks the device's
            # fused kernel (flash / memory-efficient on CUDA).
            kv = joint.unsqueeze(1)  # (B, 1, S, r + dr): one shared key/value head
            o_lat = F.scaled_dot_product_attention(q, kv, kv, attn_mask=mask, scale=self.scaling)[..., : self.rank]
        else:
            # On the CPU, two matmuls with a float32 softmax beat torch's flash CPU kernel at this head width
            # (1,024): 1.5-2.3x at 16K-128K contexts (benchmarks/RESULTS.md, M^2LA (b2)). matmul reads the
            # strided latent view in place.
            s = torch.matmul(q, joint.unsqueeze(1).transpose(-1, -2)) * self.scaling  # (B, 1, H*T, S)
            if mask is not None:
                s = s + mask
            o_lat = torch.matmul(s.float().softmax(-1).to(joint.dtype), joint[..., : self.rank].unsqueeze(1))
        return torch.einsum("bhtr,hdr->bhtd", o_lat.reshape(B, H, T, self.rank), w_uv)  # (B, H, T, dv)


def _additive_mask(mask, B: int, T: int, S: int, dtype, device) -> torch.Tensor | None:
    """Normalise the host's mask to additive ``(B|1, 1, T, S)``; None -> causal aligned to the end."""
    if mask is None:
        if T == 1:
            return None
        i = torch.arange(T, device=device).view(T, 1) + (S - T)
        allowed = torch.arange(S, device=device).view(1, S) <= i  # (T, S)
        mask = allowed.view(1, 1, T, S)
    if mask.dim() == 2:  # (T, S)
        mask = mask.view(1, 1, *mask.shape)
    mask = mask[..., :S] if mask.shape[-1] > S else mask  # static-style masks: keys sit at the start
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=device).masked_fill(~mask, torch.finfo(dtype).min)
    return mask.to(dtype)
