"""Which files a tool call may name: only the task's media and the run's output folder.

A tool's arguments come from the model, and the model read the video's
speech, its on-screen text and whatever a search returned, so an argument is
untrusted text. A plugin tool that takes an image, mask or file path must not
become a way to read ``/etc/passwd`` or ``../../secrets`` into the context
(and from there into a trace someone shares). The graph checks every
path-typed argument before a tool runs; one outside the allowed folders is a
:class:`~mcr.tools.errors.ToolFailure` typed ``path_outside_task`` that the
policy sees as a ToolError, and the tool never runs.

An argument is path-typed when its value is a ``pathlib`` path (a field
annotated ``Path``), or a string in a field whose name says it is a path
(``path``, ``image``, ``mask``, ``keyframe``, ``file``, ..., also as a suffix:
``image_path``, ``mask_file``; in nested models, lists and dicts too). A tool
whose string field has such a name but is not a path sets
``path_arguments = ()`` (or names its real path fields) on its class.

Allowed: the run's workdir (artifacts, keyframes, overlays, caches), the video
file and the folder it is in (the task's media), after resolving ``..`` and
symlinks, so neither can lead out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePath
from typing import Any

from pydantic import BaseModel

from mcr.tools.errors import ToolFailure

__all__ = ["PATH_NAME", "allowed_roots", "check_path", "path_arguments"]

#: Field names (or name suffixes) whose string values are file paths.
PATH_NAME = re.compile(
    r"(?:^|_)(?:path|paths|file|files|filename|filenames|dir|directory|folder|image|images|mask|masks|keyframe|"
    r"keyframes|frame_path|overlay|video|audio|checkpoint|weights|corpus|source_file|input_file|output_file)$",
    re.I,
)


def allowed_roots(workdir: str | Path, video_path: str | Path | None) -> list[Path]:
    """The folders a tool may read: the workdir and the video's folder (resolved)."""
    roots = [Path(workdir).expanduser().resolve()]
    if video_path:
        video = Path(video_path).expanduser().resolve()
        roots.append(video.parent)
    return roots


def check_path(value: str | PurePath, roots: Iterable[Path], what: str = "path") -> Path:
    """`value` resolved, if it lies inside one of `roots`.

    Raises:
        ToolFailure: ``path_outside_task`` (outside every root, also through
            ``..`` or a symlink) or ``invalid_path`` (NUL bytes, a loop).
    """
    text = str(value)
    roots = list(roots)
    try:
        resolved = Path(text).expanduser().resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # NUL byte, symlink loop, too long
        raise ToolFailure(f"{what} {text[:200]!r} is not a usable path ({type(exc).__name__}); "
                          "name a file in the run's output folder or beside the video", "invalid_path") from None
    if any(resolved == root or resolved.is_relative_to(root) for root in roots):
        return resolved
    raise ToolFailure(
        f"{what} {text[:200]!r} (resolved to {resolved}) is outside the task's media and the run's output folder "
        f"({', '.join(map(str, roots))}); tools may read only files there", "path_outside_task",
    )


def path_arguments(value: Any, names: tuple[str, ...] | None, where: str = "") -> Iterator[tuple[str, Any]]:
    """Every (argument path, value) in a validated Input that names a file (see the module docstring)."""
    if isinstance(value, BaseModel):
        for field in type(value).model_fields:  # declared fields only: a served tool's extras are not its own
            yield from _walk(getattr(value, field), field, names, f"{where}.{field}" if where else field)
        return
    yield from _walk(value, "", names, where)


def _walk(value: Any, name: str, names: tuple[str, ...] | None, where: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, PurePath):
        yield where, value
    elif isinstance(value, str):
        named = name in names if names is not None else bool(PATH_NAME.search(name))
        if named and value:
            yield where, value
    elif isinstance(value, BaseModel):
        yield from path_arguments(value, names, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, str(key), names, f"{where}.{key}")
    elif isinstance(value, (list, tuple, set, frozenset)):
        for i, item in enumerate(value):
            yield from _walk(item, name, names, f"{where}[{i}]")
