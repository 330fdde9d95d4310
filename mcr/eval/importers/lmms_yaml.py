"""Read an lmms-eval task YAML: which benchmark it is, and the prompt and generation settings it uses.

lmms-eval task files (``lmms_eval/tasks/<name>/<task>.yaml``) name a Hugging
Face dataset, a split, ``doc_to_*`` functions (``!function utils.x`` tags),
``generation_kwargs`` and per-model ``lmms_eval_specific_kwargs`` with a
``pre_prompt``/``post_prompt``; ``include:`` pulls in a shared template. They
hold no questions: those come from the local annotation file. So the YAML
chooses the importer and contributes its prompt settings to the tasks' metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from mcr.eval.importers.base import BenchmarkImportError


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps lmms-eval's ``!function module.name`` tags as plain strings."""


_Loader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")

# (substring of the task name or dataset path, importer format), first match wins.
_FORMATS = (
    ("videomme", "videomme"), ("video-mme", "videomme"), ("mlvu", "mlvu"), ("longvideobench", "longvideobench"),
    ("lvbench", "lvbench"), ("egoschema", "egoschema"), ("charades", "charades_sta"),
)


class LmmsTask(BaseModel):
    """What our importers use from an lmms-eval task file."""

    model_config = ConfigDict(extra="forbid")

    path: str
    task: str
    format: str
    dataset_path: str | None = None
    test_split: str | None = None
    output_type: str | None = None
    pre_prompt: str = ""
    post_prompt: str = ""
    generation_kwargs: dict[str, Any] = Field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        return {"task": self.task, "dataset_path": self.dataset_path, "split": self.test_split,
                "pre_prompt": self.pre_prompt, "post_prompt": self.post_prompt,
                "max_new_tokens": self.generation_kwargs.get("max_new_tokens")}


def _load(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path in seen:
        raise BenchmarkImportError(path, "includes itself (an include: cycle)")
    if not path.is_file():
        raise BenchmarkImportError(path, "lmms-eval task file not found")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise BenchmarkImportError(path, f"malformed YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise BenchmarkImportError(path, "an lmms-eval task file is a mapping of keys (task, dataset_path, ...)")
    include = data.pop("include", None)
    if include:
        base = _load(path.parent / include, (*seen, path))
        data = {**base, **data}
    return data


def read_lmms_task(path: str | Path, model: str = "default") -> LmmsTask:
    """Parse an lmms-eval task YAML (following ``include:``); `model` picks the prompt variant.

    Raises:
        BenchmarkImportError: unreadable, or a benchmark our importers do not read.
    """
    path = Path(path)
    data = _load(path)
    task = str(data.get("task") or path.stem)
    dataset = data.get("dataset_path")
    key = f"{task} {dataset or ''}".lower()
    fmt = next((f for needle, f in _FORMATS if needle in key), None)
    if fmt is None:
        raise BenchmarkImportError(path, f"task {task!r} (dataset {dataset!r}) is not a benchmark these importers read; "
                                         f"known: {', '.join(sorted({f for _, f in _FORMATS}))}", key="task")
    prompts = data.get("lmms_eval_specific_kwargs") or {}
    chosen = prompts.get(model) or prompts.get("default") or {}
    return LmmsTask(
        path=str(path), task=task, format=fmt, dataset_path=dataset, test_split=data.get("test_split"),
        output_type=data.get("output_type"), pre_prompt=str(chosen.get("pre_prompt") or ""),
        post_prompt=str(chosen.get("post_prompt") or ""), generation_kwargs=dict(data.get("generation_kwargs") or {}),
    )
