"""LatentCache: transformers Cache semantics, crop/fork/save/load, 8-bit storage."""

import pytest
import torch
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

from mcr.model.m2la.cache import LatentCache
from mcr.model.m2la.integrate import m2la_config_from_hf, patch_attention


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=8)
    m = LlamaForCausalLM(cfg).eval()
    patch_attention(m, m2la_config_from_hf(cfg, kv_lora_rank=10, qk_rope_head_dim=4))
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.2)
    return m


IDS = torch.randint(0, 97, (1, 14), generator=torch.Generator().manual_seed(1))


def _fill(c, n, r=3, dr=2, start=0):
    for layer in range(2):
        lat = torch.arange(start, start + n).float().view(1, 1, n, 1).expand(1, 1, n, r) + layer
        c.update(lat, -lat[..., :dr], layer)


def test_update_returns_everything_and_grows_geometrically():
    c = LatentCache()
    _fill(c, 300)
    _fill(c, 5, start=300)
    k, v = c.layers[0].keys, c.layers[0].values
    assert k.shape == (1, 1, 305, 3) and v.shape == (1, 1, 305, 2)
    assert torch.equal(k[0, 0, :, 0], torch.arange(305).float())
    assert c.layers[0]._buf.shape[1] == 512  # doubled past the 256 minimum, not resized per append
    assert c.get_seq_length() == 305 and c.get_mask_sizes(4, 1) == (309, 0)
    assert c.nbytes() == 2 * 305 * 5 * 4 and c.nbytes(allocated=True) == 2 * 512 * 5 * 4


def test_crop_mirrors_dynamic_cache():
    ours, ref = LatentCache(), DynamicCache()
    for c in (ours, ref):
        _fill(c, 9)
        c.crop(-4)
    assert ours.get_seq_length() == ref.get_seq_length() == 5
    torch.testing.assert_close(ours.layers[1].keys, ref.layers[1].keys)
    for c in (ours, ref):
        with pytest.raises(ValueError):
            c.crop(3)  # 5.x: positive counts are rejected


def test_prefill_decode_and_crop_match_full_forward(tiny):
    full = tiny(IDS).logits
    c = LatentCache()
    a = tiny(IDS[:, :8], cache=c, use_cache=True).logits
    steps = [tiny(IDS[:, i : i + 1], cache=c, use_cache=True).logits for i in range(8, 14)]
    torch.testing.assert_close(torch.cat([a, *steps], 1), full, atol=1e-5, rtol=1e-5)
    c.crop(6 - c.get_seq_length())  # roll back to 6 tokens, re-prefill the rest in one chunk
    torch.testing.assert_close(tiny(IDS[:, 6:], cache=c).logits, full[:, 6:], atol=1e-5, rtol=1e-5)


def test_generate_with_latent_cache_equals_dynamic_cache(tiny):
    kw = dict(max_new_tokens=6, do_sample=False, pad_token_id=0)
    assert torch.equal(tiny.generate(IDS, cache=LatentCache(), **kw), tiny.generate(IDS, **kw))


def test_fork_shares_prefix_copy_on_write(tiny):
    c = LatentCache()
    tiny(IDS[:, :8], cache=c)
    before = c.layers[0].joint().clone()
    f = c.fork()
    assert f.layers[0]._buf is c.layers[0]._buf  # shared until someone writes
    side = tiny(IDS[:, 8:11], cache=f).logits
    assert f.layers[0]._buf is not c.layers[0]._buf
    torch.testing.assert_close(c.layers[0].joint(), before)  # the main cache is untouched
    main = tiny(IDS[:, 8:11], cache=c).logits
    torch.testing.assert_close(main, side)
    assert c.get_seq_length() == f.get_seq_length() == 11


def test_save_load_roundtrip(tiny, tmp_path):
    c = LatentCache()
    tiny(IDS[:, :9], cache=c)
    c.save(tmp_path / "p.safetensors", metadata={"ids": IDS[0, :9].tolist()})
    c2, meta = LatentCache.load(tmp_path / "p.safetensors")
    assert meta["ids"] == IDS[0, :9].tolist() and c2.get_seq_length() == 9
    torch.testing.assert_close(tiny(IDS[:, 9:], cache=c2).logits, tiny(IDS[:, 9:], cache=c).logits)
    (tmp_path / "bad.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    with pytest.raises(ValueError, match="not a LatentCache"):
        LatentCache.load(tmp_path / "bad.safetensors")


def test_8bit_storage_is_small_and_close(tiny, tmp_path):
    full = tiny(IDS).logits
    q = LatentCache(quantize_8bit=True)
    tiny(IDS[:, :10], cache=q)
    out = tiny(IDS[:, 10:], cache=q).logits
    assert (out - full[:, 10:]).abs().max() < 0.05 * full.abs().max()
    assert q.nbytes() == 2 * 14 * (14 + 2 * 2)  # int8 values + two fp16 scales per token and layer
    q.save(tmp_path / "q.safetensors")
    q2, _ = LatentCache.load(tmp_path / "q.safetensors")
    torch.testing.assert_close(q2.layers[1].joint(), q.layers[1].joint())
