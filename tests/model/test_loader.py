"""The loader: local checkpoints, GGUF with a dequantised cache, M^2LA routing, clear errors."""

from __future__ import annotations

import json
import time

import pytest
import torch

from mcr.model.runtime.loader import (
    INTERNVIDEO3_ID,
    ModelLoadError,
    WeightsNotFound,
    load_model,
    load_smollm2,
    smollm2_gguf,
    user_cache_dir,
)
from mcr.model.runtime.tiny import build_tiny_qwen3vl, save_tiny_qwen3vl, tiny_qwen3vl_config


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_qwen3vl(tmp_path_factory.mktemp("tiny"), seed=0)


def test_tiny_checkpoint_loads_as_qwen_vl_with_its_weights(tiny_dir):
    loaded = load_model(tiny_dir, dtype="float32")
    assert loaded.kind == "qwen_vl" and loaded.multimodal and not loaded.m2la
    assert loaded.processor is not None and loaded.tokenizer.chat_template
    assert loaded.model.dtype == torch.float32 and not loaded.model.training
    assert loaded.model.config._attn_implementation == "sdpa"
    reference, _ = build_tiny_qwen3vl(seed=0)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.inference_mode():
        assert torch.equal(loaded.model(input_ids=ids).logits, reference(input_ids=ids).logits)


def test_dtype_is_applied(tiny_dir):
    assert load_model(tiny_dir, dtype="bfloat16").model.dtype == torch.bfloat16


def test_unknown_dtype_is_rejected(tiny_dir):
    with pytest.raises(ModelLoadError, match="unknown dtype 'float7'"):
        load_model(tiny_dir, dtype="float7")


def test_missing_path_says_what_to_do(tmp_path):
    with pytest.raises(WeightsNotFound, match="does not exist"):
        load_model(tmp_path / "nowhere" / "model")


def test_hub_id_offline_names_the_download(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFound) as err:
        load_model(INTERNVIDEO3_ID)
    message = str(err.value)
    assert "huggingface-cli download OpenGVLab/InternVideo3-8B-Instruct" in message
    assert "HF_HUB_OFFLINE" in message


def test_folder_without_config_or_weights(tmp_path):
    with pytest.raises(WeightsNotFound, match="no config.json"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(WeightsNotFound, match="no \\*.safetensors weights"):
        load_model(tmp_path)


def test_broken_config_json(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        load_model(tmp_path)


def test_remote_code_needs_opt_in(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "my_secret_arch", "auto_map": {"AutoModel": "x.Y"}}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="trust_remote_code=True"):
        load_model(tmp_path)


def test_missing_gguf_file(tmp_path):
    with pytest.raises(WeightsNotFound, match="GGUF file"):
        load_model(tmp_path / "model.gguf")


def test_m2la_config_routes_to_our_m2la_builder(tmp_path):
    """A checkpoint whose config has kv_lora_rank (InternVideo3) is built by mcr.model.m2la.integrate."""
    from mcr.model.m2la.integrate import build_m2la_model, m2la_config_from_hf
    from mcr.model.runtime.tiny import tiny_processor

    config = tiny_qwen3vl_config()
    m2 = m2la_config_from_hf(config, kv_lora_rank=24, qk_rope_head_dim=16, qk_nope_head_dim=16, v_head_dim=16)
    torch.manual_seed(0)
    model = build_m2la_model(config, m2)
    model.save_pretrained(tmp_path)
    tiny_processor().save_pretrained(tmp_path)
    assert "kv_lora_rank" in json.loads((tmp_path / "config.json").read_text())["text_config"]
    loaded = load_model(tmp_path, dtype="float32")
    assert loaded.m2la and loaded.kind == "qwen_vl"
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.inference_mode():
        assert torch.allclose(loaded.model(input_ids=ids).logits, model(input_ids=ids).logits, atol=1e-6)


def test_smollm2_loads_through_the_dequantised_cache():
    first = load_smollm2()  # dequantises once per machine, then reads the cached copy
    assert first.kind == "causal_lm" and first.processor is None
    copies = list((user_cache_dir() / "models").glob("SmolLM2-135M-Instruct*"))
    assert copies and (copies[0] / "config.json").is_file()
    assert "quantization_config" not in json.loads((copies[0] / "config.json").read_text())
    t0 = time.perf_counter()
    second = load_smollm2()
    assert time.perf_counter() - t0 < 10.0
    assert second.name == first.name and second.name.startswith("gguf:")
    ids = first.tokenizer("The lighthouse keeper counts ships.", return_tensors="pt").input_ids
    with torch.inference_mode():
        assert torch.equal(first.model(ids).logits, second.model(ids).logits)
    assert smollm2_gguf().suffix == ".gguf"
