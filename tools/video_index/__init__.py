"""The persistent per-video index (issue 22): built once per video, shared by every question and process.

`mcr.tools.index` is the *episode's* text index (rebuilt in memory from the
context each turn); this package is the *video's* index (built once from the
media, stored on disk, keyed by content + settings + versions + models). See
`mcr.tools.video_index.video_index` for the API and `docs/architecture.md`
("The video index") for how it fits.
"""

from mcr.tools.video_index.records import (
    STAGES,
    BuildProgress,
    Chapter,
    IndexHit,
    IndexSettings,
    IndexStatus,
    Scene,
    ScreenText,
    Shot,
    StageStatus,
)
from mcr.tools.video_index.store import IndexLocked, IndexUnavailable
from mcr.tools.video_index.video_index import VideoIndex

__all__ = [
    "STAGES", "BuildProgress", "Chapter", "IndexHit", "IndexLocked", "IndexSettings", "IndexStatus",
    "IndexUnavailable", "Scene", "ScreenText", "Shot", "StageStatus", "VideoIndex",
]
