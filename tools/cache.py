"""A result cache for tools: memory in front of disk, keyed by what the result depends on.

Perception tools are slow (shot detection decodes the whole span; SAM's image
encoder takes ~15 s on 2 CPU cores) and a policy often asks the same thing
twice, in one episode or across episodes on the same video. A result depends
on the file's *content*, the span, and the tool's settings, so the key is the
SHA-256 of exactly those (the file by content hash, not its path or mtime: a
copy of the video hits, an edited file misses).

Values are a tool's pydantic ``Output``: stored as JSON files under
``<root>/<tool>/<key[:2]>/<key>.json`` (written atomically, so a crash never
leaves a half file that later reads as a hit) and kept in a small in-memory
LRU. Outputs that point at files (keyframes, overlays) are only hits while
those files exist, so deleting a workdir's images re-runs the tool.

Usage::

    cache = ResultCache.for_context(ctx)          # <ctx.workdir>/cache
    key = cache.key("segment", video_path, span, {"mode": "temporal", ...})
    out = cache.get_or_compute(key, SegmentTool.Output, lambda: compute())
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from mcr.context import TimeSpan

M = TypeVar("M", bound=BaseModel)

_CHUNK = 1 << 20


class FileDigests:
    """SHA-256 of files, memoised by (path, size, mtime) so a big video is read once."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, int, int], str] = {}

    def __call__(self, path: str | Path) -> str:
        path = Path(path).resolve()
        stat = path.stat()  # FileNotFoundError names the path
        ident = (str(path), stat.st_size, stat.st_mtime_ns)
        digest = self._known.get(ident)
        if digest is None:
            h = hashlib.sha256()
            with path.open("rb") as f:
                while block := f.read(_CHUNK):
                    h.update(block)
            digest = self._known[ident] = h.hexdigest()
        return digest


class ResultCache:
    """Tool outputs keyed by file content + span + settings; memory LRU over JSON files.

    Args:
        root: folder for the JSON files (created on first write); None keeps
            results in memory only.
        max_memory_items: size of the in-memory LRU.
        max_memory_bytes: and its bound in bytes (of the values' JSON): an hour's
            transcripts or shot lists are large, and memory must stay flat in
            the video's length (issue 22). The disk layer is unbounded.
    """

    def __init__(self, root: str | Path | None, max_memory_items: int = 256, max_memory_bytes: int = 64 << 20):
        self.root = Path(root) if root is not None else None
        self.max_memory_items = max_memory_items
        self.max_memory_bytes = max_memory_bytes
        self._memory: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._sizes: dict[str, int] = {}  # JSON bytes of each value in memory
        self._bytes = 0
        self.digest = FileDigests()
        self.hits = self.misses = 0

    @classmethod
    def for_context(cls, ctx: Any) -> ResultCache:
        """The cache under a ToolContext's workdir (``<workdir>/cache``)."""
        return cls(Path(ctx.workdir) / "cache")

    # -- keys ------------------------------------------------------------- #
    def key(
        self,
        tool: str,
        path: str | Path | None = None,
        span: TimeSpan | tuple[float, float] | None = None,
        settings: dict[str, Any] | BaseModel | None = None,
    ) -> str:
        """A stable key: tool name, file content hash, span (ms), settings as sorted JSON."""
        if isinstance(span, TimeSpan):
            span = (span.start, span.end)
        if isinstance(settings, BaseModel):
            settings = settings.model_dump(mode="json")
        parts = {
            "tool": tool,
            "file": self.digest(path) if path is not None else None,
            "span": [round(v, 3) for v in span] if span is not None else None,
            "settings": settings or {},
        }
        blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
        return f"{_safe(tool)}-{hashlib.sha256(blob.encode()).hexdigest()[:40]}"

    # -- get / put -------------------------------------------------------- #
    def _file(self, key: str) -> Path | None:
        if self.root is None:
            return None
        tool = key.rsplit("-", 1)[0]
        return self.root / tool / key[-40:][:2] / f"{key}.json"

    def get(self, key: str, model: type[M], files: Callable[[M], Iterable[str]] | None = None) -> M | None:
        """The cached value of `key` as `model`, or None (missing, stale or unreadable).

        Args:
            files: the paths a value points at; a value whose files are gone is a miss.
        """
        data = self._memory.get(key)
        size = self._sizes.get(key, 0)
        if data is None and (file := self._file(key)) is not None and file.is_file():
            try:
                text = file.read_text(encoding="utf-8")
                data, size = json.loads(text), len(text)
            except (OSError, ValueError, RecursionError):  # damaged, not UTF-8 (a pickle), nested too deep
                data = None
        value = None
        if data is not None:
            try:
                value = model.model_validate(data)
            except ValidationError:
                value = None  # written by an older Output schema: recompute
        if value is not None and files is not None and not all(Path(p).exists() for p in files(value)):
            value = None
        if value is None:
            self._forget(key)
            self.misses += 1
            return None
        self._remember(key, data, size)
        self.hits += 1
        return value

    def put(self, key: str, value: BaseModel) -> None:
        data = value.model_dump(mode="json")
        text = json.dumps(data)
        self._remember(key, data, len(text))
        file = self._file(key)
        if file is None:
            return
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, file)  # atomic: readers see the old file or the whole new one
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_or_compute(
        self,
        key: str,
        model: type[M],
        compute: Callable[[], M],
        files: Callable[[M], Iterable[str]] | None = None,
    ) -> M:
        """The cached value, or `compute()` stored under `key`. Exceptions are not cached."""
        cached = self.get(key, model, files)
        if cached is not None:
            return cached
        value = compute()
        self.put(key, value)
        return value

    def _remember(self, key: str, data: dict[str, Any], size: int) -> None:
        self._forget(key)
        if size > self.max_memory_bytes:
            return  # too big to keep in memory: the disk layer serves it
        self._memory[key] = data
        self._sizes[key] = size
        self._bytes += size
        while len(self._memory) > self.max_memory_items or self._bytes > self.max_memory_bytes:
            self._forget(next(iter(self._memory)))

    def _forget(self, key: str) -> None:
        if self._memory.pop(key, None) is not None:
            self._bytes -= self._sizes.pop(key, 0)

    @property
    def memory_bytes(self) -> int:
        """JSON bytes of the values held in memory (bounded by ``max_memory_bytes``)."""
        return self._bytes

    def clear_memory(self) -> None:
        """Drop the in-memory layer (the disk layer stays)."""
        self._memory.clear()
        self._sizes.clear()
        self._bytes = 0


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "tool"
