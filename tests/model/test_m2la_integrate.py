"""M^2LA as a drop-in attention: tiny Qwen3-VL (mrope, image) and InternVideo3 weight names."""

import pytest
import torch

from mcr.model.m2la.cache import LatentCache
from mcr.model.m2la.attention import M2LAAttention
from mcr.model.m2la.integrate import (
    build_m2la_model,
    internvideo3_8b_m2la_config,
    load_m2la_state_dict,
    m2la_config_from_hf,
)


def _qwen3vl_config():
    from transformers import Qwen3VLConfig

    return Qwen3VLConfig(
        text_config=dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                         rope_parameters=dict(rope_type="default", rope_theta=5e6, mrope_section=[4, 2, 2],
                                              mrope_interleaved=True)),
        vision_config=dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                           patch_size=8, spatial_merge_size=2, temporal_patch_size=2, deepstack_visual_indexes=[0]),
        image_token_id=250, video_token_id=251, vision_start_token_id=252, vision_end_token_id=253)


@pytest.fixture(scope="module")
def qvl():
    torch.manual_seed(0)
    cfg = _qwen3vl_config()
    m2 = m2la_config_from_hf(cfg, kv_lora_rank=24, qk_rope_head_dim=16, qk_nope_head_dim=16, v_head_dim=16)
    return build_m2la_model(cfg, m2)


IDS = torch.tensor([[1, 2, 3, 252, 250, 250, 250, 250, 253, 5, 6, 7, 8, 9]])
MM = (IDS == 250).long()
PIX = torch.randn(16, 3 * 2 * 8 * 8, generator=torch.Generator().manual_seed(0))
THW = torch.tensor([[1, 4, 4]])


def test_8b_parameter_shapes_match_public_checkpoint():
    with torch.device("meta"):
        a = M2LAAttention(internvideo3_8b_m2la_config(), layer_idx=3)
    shapes = {n: tuple(p.shape) for n, p in a.named_parameters()}
    assert shapes == {"q_proj.weight": (8192, 4096), "q_proj.bias": (8192,),
                      "kv_a_proj_with_mqa.weight": (1024, 4096), "kv_a_proj_with_mqa.bias": (1024,),
                      "kv_b_proj.weight": (8192, 896), "o_proj.weight": (4096, 4096)}
    assert a.scaling == pytest.approx(1 / 16) and internvideo3_8b_m2la_config().cache_values_per_token() == 1024


def test_qwen3vl_image_prefill_then_decode_equals_full_forward(qvl):
    full = qvl(input_ids=IDS, pixel_values=PIX, image_grid_thw=THW, mm_token_type_ids=MM).logits
    c = LatentCache()
    a = qvl(input_ids=IDS[:, :11], pixel_values=PIX, image_grid_thw=THW, mm_token_type_ids=MM[:, :11],
            cache=c, use_cache=True).logits
    b = [qvl(input_ids=IDS[:, i : i + 1], cache=c, use_cache=True).logits for i in range(11, 14)]
    torch.testing.assert_close(torch.cat([a, *b], 1), full, atol=1e-5, rtol=1e-5)
    assert c.get_seq_length() == 14 and len(c.layers) == 2


def test_qwen3vl_generate_latent_cache_equals_default(qvl):
    kw = dict(input_ids=IDS, pixel_values=PIX, image_grid_thw=THW, mm_token_type_ids=MM, max_new_tokens=4,
              do_sample=False)
    assert torch.equal(qvl.generate(cache=LatentCache(), **kw), qvl.generate(**kw))


def test_load_internvideo3_style_state_dict(qvl):
    sd = {k: torch.randn_like(v) for k, v in qvl.state_dict().items()}
    attn = [k for k in sd if ".self_attn." in k]
    assert "model.language_model.layers.1.self_attn.kv_a_proj_with_mqa.bias" in attn
    assert not [k for k in attn if any(s in k for s in ("k_proj", "v_proj", "q_norm", "k_norm"))]
    torch.manual_seed(1)
    other = build_m2la_model(_qwen3vl_config(), qvl.model.language_model.layers[0].self_attn.config)
    load_m2la_state_dict(other, sd)  # strict: raises on any missing/unexpected key
    torch.testing.assert_close(other.model.language_model.layers[1].self_attn.kv_b_proj.weight,
                               sd["model.language_model.layers.1.self_attn.kv_b_proj.weight"])
    with pytest.raises(ValueError, match="unexpected"):
        load_m2la_state_dict(other, sd | {"model.language_model.layers.0.self_attn.k_proj.weight": torch.zeros(1)})
    sd.pop("model.language_model.layers.0.self_attn.o_proj.weight")
    with pytest.raises(ValueError, match="1 missing"):
        load_m2la_state_dict(other, sd)


def test_config_fields_survive_and_bad_rope_index_is_rejected(qvl):
    tc = qvl.config.get_text_config(decoder=True)
    again = m2la_config_from_hf(qvl.config)
    assert (again.kv_lora_rank, again.qk_rope_head_dim, tc.rope_interleave) == (24, 16, True)
    from transformers import LlamaConfig

    with pytest.raises(ValueError, match="no M\\^2LA fields"):
        m2la_config_from_hf(LlamaConfig(hidden_size=32, num_attention_heads=4))
    bad = m2la_config_from_hf(_qwen3vl_config(), kv_lora_rank=8, qk_rope_head_dim=4, rope_freq_index=[0, 8])
    with pytest.raises(ValueError, match="host rotary has 8 pairs"):
        build_m2la_model(_qwen3vl_config(), bad)
