"""How tools reach the video index: which index a call may use, and its texts beside the episode's.

`ground` and `search` answer from the episode's context *and* the video's
index, whatever the context holds: a question can be grounded before anything
was transcribed in this episode, because an earlier question, process or
`mcr index` already heard the whole video.

The tool setting ``video_index`` says how:

* ``auto`` (default) — use the index if one exists for this video and these
  settings (built or being built: what is committed is read); never build;
* ``build`` — build what is missing first (resumable, shared; can take
  minutes on a long video — `mcr index` does it ahead of time);
* ``off`` — the context only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mcr.context import TimeSpan
from mcr.tools.index import Doc, TextIndex, load_embedder
from mcr.tools.video_index.store import IndexUnavailable
from mcr.tools.video_index.video_index import VideoIndex

INDEX_SOURCES = ("transcript", "ocr", "scene")  # chapters span minutes: too broad to ground or cite


def index_for(ctx: Any) -> VideoIndex | None:
    """The video index this tool call may read (see the module docstring), or None."""
    from mcr.model.media.video import VideoError
    from mcr.tools.base import ToolFailure

    mode = str(ctx.settings.get("video_index", "auto"))
    if mode not in ("auto", "build", "off"):
        raise ToolFailure(f"settings.video_index={mode!r}: use auto, build or off", "invalid_settings")
    if mode == "off" or ctx.video is None:
        return None
    from pydantic import ValidationError

    from mcr.tools.video_index.records import IndexSettings

    try:
        IndexSettings.from_tool_settings(ctx.settings)
    except (ValidationError, TypeError):
        return None  # settings no index is built with (e.g. an unknown vad): the tool reports them itself
    try:
        if mode == "build":
            index = VideoIndex.for_tool(ctx.video.path, ctx.settings)
            index.build(should_stop=ctx.cancelled.is_set)
            return index
        from mcr.tools.video_index.key import index_root

        return VideoIndex.find(ctx.video.path, IndexSettings.from_tool_settings(ctx.settings),
                               root=index_root(ctx.settings))
    except (VideoError, OSError):
        return None  # the tool's own checks report an unreadable video
    except IndexUnavailable as exc:
        if mode == "build":  # asked for: say why it cannot be had
            raise ToolFailure(str(exc), "index_unavailable") from None
        return None  # no usable index: the tool works from the context alone


def known_changes(ctx: Any, span: TimeSpan) -> list[float] | None:
    """Where the picture changes inside `span`, from the video's index; None when no index has looked there.

    Why: a tool that reads on-screen text between its sampled frames must
    otherwise find the changes itself by decoding the span at 4 frames a
    second (`mcr.tools.change_points.text_read_times`) — on a long video that
    scan, repeated for every skim, cost more frames than the whole index
    (measured: `benchmarks/RESULTS.md`, "Sixth session"). The index found every
    change once, from the bitstream, for all questions.
    """
    index = index_for(ctx)
    if index is None or not index.picture_covers(span):
        return None
    return index.change_points(span)


def merged_index(context_docs: list[Doc], index: VideoIndex | None, within: TimeSpan | None = None,
                 sources: tuple[str, ...] = INDEX_SOURCES) -> TextIndex:
    """One `TextIndex` over the episode's documents and the video index's (stored vectors reused).

    The episode's documents come first: on a tie (the same sentence in both)
    the one that cites a context entry wins.
    """
    if index is None:
        return TextIndex(context_docs)
    docs, vectors = index.documents(sources, within)
    embedder = load_embedder()
    if embedder is None or vectors is None:
        return TextIndex(context_docs + docs)
    own = embedder.encode([d.text for d in context_docs])  # (N, dim)
    return TextIndex(context_docs + docs, vectors=np.concatenate([own, vectors]) if len(own) else vectors)
