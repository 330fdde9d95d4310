"""What the measured scene facts cost in `summarize`, side by side in one run.

`summarize` without a vision model writes each scene from measured facts; the
pixel facts (named colours, brightness, motion, YOLOv3-tiny objects on a few
sampled frames per scene, `mcr.tools.span_facts.measure_span`) are the new
part. This compares, on the bundled sample (4 scenes) after a warm-up that
loads every model (OCR, YOLO, the embedder): a cold summary without pixels,
with pixels but no objects, with pixels and objects, and a second request
(served from the result cache).

    python benchmarks/bench_summarize.py

Prints one JSON line per figure.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "media" / "sample.mp4"


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from mcr.context import Context, Instruction, ToolCall, ToolResult, VideoRef
    from mcr.tools.asr import TranscribeTool
    from mcr.tools.base import ToolContext
    from mcr.tools.summarize import SummarizeTool

    root = Path(tempfile.mkdtemp(prefix="bench_summarize-"))
    video = VideoRef(path=str(SAMPLE))
    context = Context()
    context.append(Instruction(text="What happens?", video=video))
    heard = TranscribeTool()({}, ToolContext(context=context, video=video, workdir=root / "asr"))
    call = context.append(ToolCall(tool="transcribe"))
    context.append(ToolResult(tool="transcribe", refs=(call.id,), output=heard.model_dump(mode="json")))

    def run(name: str, args: dict, settings: dict, workdir: Path) -> float:
        t0 = time.perf_counter()
        SummarizeTool()(args, ToolContext(context=context, video=video, workdir=workdir, settings=settings))
        return time.perf_counter() - t0

    run("warm-up", {}, {}, root / "warm")  # loads OCR, YOLO, the embedder, decodes nothing twice after
    rows = {
        "no pixels": run("a", {"pixels": False}, {}, root / "a"),
        "pixels, no objects": run("b", {}, {"objects": False}, root / "b"),
        "pixels and objects": run("c", {}, {}, root / "c"),
    }
    rows["second request (cached)"] = run("c2", {}, {}, root / "c")
    base = rows["no pixels"]
    for name, seconds in rows.items():
        print(json.dumps({"figure": f"summarize sample.mp4 (4 scenes, 3 frames each): {name}",
                          "seconds": round(seconds, 2), "vs_no_pixels": round(seconds / base, 2)}))
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
