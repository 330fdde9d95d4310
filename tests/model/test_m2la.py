"""M^2LA attention: config validation, absorbed == naive, RoPE vs transformers."""

import pytest
import torch

from mcr.model.m2la.cache import LatentCache
from mcr.model.m2la.attention import M2LAAttention, M2LAConfig, apply_decoupled_rope, rope_cos_sin


def _cfg(**kw):
    base = dict(hidden_size=32, num_attention_heads=4, kv_lora_rank=12, qk_rope_head_dim=8,
                qk_nope_head_dim=6, v_head_dim=5, num_hidden_layers=2)
    base.update(kw)
    return M2LAConfig(**base)


def _attn(cfg, seed=0):
    torch.manual_seed(seed)
    a = M2LAAttention(cfg, layer_idx=0).eval()
    for p in a.parameters():  # non-trivial norms/biases too
        torch.nn.init.normal_(p, std=0.3)
    return a


def _rope(B, T, start=0, head_dim=16):
    inv = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    pos = (torch.arange(T) + start).expand(B, T)
    return rope_cos_sin(pos, inv)


@pytest.mark.parametrize("bad, match", [
    (dict(qk_rope_head_dim=7), "even"),
    (dict(kv_lora_rank=0), "kv_lora_rank"),
    (dict(kv_lora_rank_list=[4, 4, 4]), "3 entries for 2 layers"),
    (dict(rope_freq_index=[0, 1]), "qk_rope_head_dim // 2"),
    (dict(qk_rope_head_dim=0, qk_nope_head_dim=0), "must be > 0"),
])
def test_config_rejects_bad_shapes(bad, match):
    with pytest.raises(ValueError, match=match):
        _cfg(**bad)


def test_config_roundtrip_and_per_layer_views():
    cfg = _cfg(kv_lora_rank_list=[12, 7], rope_freq_index=[[0, 1, 2, 3], [7, 7, 0, 1]])
    again = M2LAConfig.from_dict(cfg.to_dict() | {"architectures": ["X"]})
    assert again.rank(1) == 7 and again.freq_index(1) == [7, 7, 0, 1] and again.extra == {"architectures": ["X"]}
    assert cfg.cache_values_per_token(0) == 12 + 8 and cfg.scale == pytest.approx((6 + 8) ** -0.5)
    with pytest.raises(ValueError, match="hidden_size"):
        M2LAConfig.from_dict({"num_attention_heads": 2})


@pytest.mark.parametrize("latent_norm, q_lora, interleave", [(False, None, True), (True, 10, False)])
def test_absorbed_decode_equals_naive(latent_norm, q_lora, interleave):
    cfg = _cfg(qk_latent_layernorm=latent_norm, q_lora_rank=q_lora, rope_interleave=interleave)
    a = _attn(cfg)
    B, P = 2, 9
    x = torch.randn(B, P + 3, 32)
    outs = {}
    for path in ("naive", "absorbed"):
        a.path = path
        cache = LatentCache()
        a(x[:, :P], _rope(B, P), cache=cache)  # prefill
        steps = [a(x[:, P + i : P + i + 1], _rope(B, 1, P + i), cache=cache)[0] for i in range(3)]
        outs[path] = torch.cat(steps, 1)
    torch.testing.assert_close(outs["absorbed"], outs["naive"], atol=1e-5, rtol=1e-5)
    # multi-token absorbed chunk (causal inside the chunk) too
    a.path = "naive"
    full = a(x, _rope(B, P + 3))[0]
    a.path = "absorbed"
    torch.testing.assert_close(a(x, _rope(B, P + 3))[0], full, atol=1e-5, rtol=1e-5)


def test_naive_matches_hand_written_attention():
    """The naive path is ordinary softmax attention over reconstructed per-head K/V."""
    cfg = _cfg(rope_interleave=False)
    a = _attn(cfg, seed=1)
    B, T, H = 1, 6, 4
    x = torch.randn(B, T, 32)
    cos, sin = _rope(B, T)
    q = a.q_proj(x).view(B, T, H, 14)
    c, kr = a.kv_a_proj_with_mqa(x).split([12, 8], -1)
    kv = a.kv_b_proj(c).view(B, T, H, 11)
    def rot(t):  # half-split rotate, frequencies 0..3
        t1, t2 = t[..., :4], t[..., 4:]
        cc, ss = cos[..., :4].unsqueeze(2), sin[..., :4].unsqueeze(2)
        return torch.cat((t1 * cc - t2 * ss, t2 * cc + t1 * ss), -1)
    qf = torch.cat((q[..., :6], rot(q[..., 6:])), -1)
    kf = torch.cat((kv[..., :6], rot(kr.unsqueeze(2)).expand(B, T, H, 8)), -1)
    s = torch.einsum("bthd,bshd->bhts", qf, kf) * cfg.scale
    s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
    o = torch.einsum("bhts,bshd->bthd", s.softmax(-1), kv[..., 6:]).reshape(B, T, H * 5)
    torch.testing.assert_close(a(x, (cos, sin))[0], a.o_proj(o), atol=1e-5, rtol=1e-5)


def test_mask_forms_agree():
    """None (causal), boolean and additive masks give the same result; padding is honoured."""
    a = _attn(_cfg())
    B, T = 2, 5
    x, pe = torch.randn(B, T, 32), _rope(B, T)
    allow = torch.ones(T, T).tril().bool().expand(B, 1, T, T).clone()
    allow[1, ..., 0] = False  # batch 1: first key is padding
    allow[1, 0, 0, 0] = True  # keep row 0 non-empty
    add = torch.zeros(B, 1, T, T).masked_fill(~allow, torch.finfo(torch.float32).min)
    ob, oa = a(x, pe, attention_mask=allow)[0], a(x, pe, attention_mask=add)[0]
    torch.testing.assert_close(ob, oa)
    torch.testing.assert_close(a(x, pe)[0][0], ob[0])
    assert not torch.allclose(a(x, pe)[0][1, 1:], ob[1, 1:])


def test_1d_rope_matches_llama_rotary():
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    hf = LlamaConfig(hidden_size=64, num_attention_heads=4, rope_parameters={"rope_type": "default", "rope_theta": 1e4})
    rot = LlamaRotaryEmbedding(hf)
    pos = torch.tensor([[0, 3, 17, 400, 5]])
    cos, sin = rot(torch.zeros(1), pos)
    cos2, sin2 = rope_cos_sin(pos, rot.inv_freq)
    torch.testing.assert_close((cos2, sin2), (cos, sin))
    q = torch.randn(1, 2, 5, 16)
    ref, _ = apply_rotary_pos_emb(q, q, cos, sin)
    ours = apply_decoupled_rope(q, cos, sin, torch.arange(8), interleave=False)
    torch.testing.assert_close(ours, ref)


def test_mrope_decoupled_channel_matches_qwen3vl_rotary():
    """Interleaved mrope on the decoupled channel == transformers' Qwen3-VL rotary for the same (t,h,w)."""
    from transformers import Qwen3VLTextConfig
    from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLTextRotaryEmbedding, apply_rotary_pos_emb

    tc = Qwen3VLTextConfig(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, head_dim=128,
                           rope_parameters={"rope_type": "default", "rope_theta": 5e6, "mrope_section": [24, 20, 20]})
    rot = Qwen3VLTextRotaryEmbedding(tc)
    g = torch.Generator().manual_seed(0)
    pos = torch.randint(0, 3000, (3, 2, 7), generator=g)  # distinct t, h, w positions
    cos, sin = rot(torch.zeros(1), pos)
    torch.testing.assert_close(rope_cos_sin(pos, rot.inv_freq, [24, 20, 20]), (cos, sin))
    # The checkpoint stores the 128-d channel interleaved; transformers' rotary acts on the half-split layout.
    q = torch.randn(2, 3, 7, 128, generator=g)
    k = torch.randn(2, 1, 7, 128, generator=g)
    def deint(t):
        return torch.cat((t[..., 0::2], t[..., 1::2]), -1)

    rq, rk = apply_rotary_pos_emb(deint(q), deint(k), cos, sin)
    fi = torch.arange(64)
    torch.testing.assert_close(apply_decoupled_rope(q, cos, sin, fi, True), rq)
    torch.testing.assert_close(apply_decoupled_rope(k, cos, sin, fi, True), rk)
    # text tokens (t == h == w) reduce to 1-D RoPE
    same = pos[:1].expand(3, -1, -1)
    torch.testing.assert_close(rope_cos_sin(same, rot.inv_freq, [24, 20, 20]), rope_cos_sin(same[0], rot.inv_freq))


def test_auto_path_switches_at_the_cost_crossover():
    from mcr.model.m2la.integrate import internvideo3_8b_m2la_config

    with torch.device("meta"):
        a = M2LAAttention(internvideo3_8b_m2la_config())
    assert a.absorb_max_q == 896 * 256 // (2 * 896 - 256) == 149
    assert M2LAAttention(_cfg(absorb_max_q=1)).absorb_max_q == 1


def test_absorbed_decode_is_one_sdpa_call_over_the_shared_latent(monkeypatch):
    """The absorbed path is a single-latent-head attention through SDPA (what CUDA uses, so GPU kernels
    apply): one call per layer, one key/value head holding [latent | rope key]; it and the CPU's matmul
    form both equal the naive oracle (causal multi-token chunk, so the mask is exercised too)."""
    import torch.nn.functional as F

    calls = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, **kw):
        calls.append((tuple(q.shape), tuple(k.shape), k.data_ptr() == v.data_ptr()))
        return real(q, k, v, **kw)

    cfg = M2LAConfig(hidden_size=64, num_attention_heads=4, kv_lora_rank=24, qk_rope_head_dim=8,
                     qk_nope_head_dim=8, v_head_dim=8)
    a = M2LAAttention(cfg).eval()
    a.path = "absorbed"
    x = torch.randn(1, 5, 64)
    a.kernel = "matmul"
    by_matmul = a(x, _rope(1, 5))[0]
    a.path = "naive"
    naive = a(x, _rope(1, 5))[0]
    a.path, a.kernel = "absorbed", "sdpa"
    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    by_sdpa = a(x, _rope(1, 5))[0]
    assert calls == [((1, 1, 4 * 5, 32), (1, 1, 5, 32), True)]
    torch.testing.assert_close(by_sdpa, naive, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(by_matmul, naive, atol=1e-5, rtol=1e-5)
