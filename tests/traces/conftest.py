"""Real traces for the viewer and OTel tests, recorded by the real Agent on the sample video.

The episodes are driven by a list policy that reports token usage the way a
model policy does, and two small tools that do real media work on the sample:
`keyframes` decodes one frame per equal slice of the video (PyAV) and `outline`
thresholds the bright pixels of a frame into a mask and writes an overlay PNG,
so the traces hold real keyframe and overlay images, like `segment`'s.

`make_episode(...)` is also used to make the screenshot trace (docs/viewer.png).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from mcr.agent import Agent
from mcr.verify import Verifier
from mcr.context import Context, TimeSpan
from mcr.policies.base import CallRequest, FinalAnswer, PolicyError, ToolCalls
from mcr.usage import Usage
from mcr.tools.base import Tool, ToolContext, ToolFailure, ToolRegistry

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "media" / "sample.mp4"
XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=alert(2)>"


def frame_at(path: Path, seconds: float) -> np.ndarray:
    """The first decoded frame at or after `seconds`, as RGB (H, W, 3)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        container.seek(int(seconds / stream.time_base), stream=stream, backward=True)
        for frame in container.decode(stream):
            if frame.time is not None and frame.time + 1e-3 >= seconds:
                return frame.to_ndarray(format="rgb24")  # (H, W, 3)
    raise ToolFailure(f"no frame at {seconds:.2f} s", "out_of_range")


class Shot(BaseModel):
    index: int
    span: TimeSpan
    keyframe: str


class KeyframesTool(Tool):
    name = "keyframes"
    description = "Split the video into equal slices and save the middle frame of each as a PNG."

    class Input(BaseModel):
        model_config = ConfigDict(extra="forbid")
        count: int = Field(default=4, ge=1, le=12)

    class Output(BaseModel):
        shots: list[Shot]

    def run(self, input: Input, ctx: ToolContext) -> Output:
        video = ctx.require_video()
        duration = video.duration or 0.0
        out = ctx.workdir / "keyframes"
        out.mkdir(parents=True, exist_ok=True)
        shots = []
        for i in range(input.count):
            span = TimeSpan(start=duration * i / input.count, end=duration * (i + 1) / input.count)
            image = Image.fromarray(frame_at(Path(video.path), (span.start + span.end) / 2)).resize((320, 180))
            path = out / f"shot_{i + 1:02d}.png"
            image.save(path)
            shots.append(Shot(index=i + 1, span=span, keyframe=str(path)))
        return self.Output(shots=shots)

    def span_of(self, input: BaseModel, output: BaseModel) -> TimeSpan | None:
        shots = output.shots
        return TimeSpan(start=shots[0].span.start, end=shots[-1].span.end) if shots else None

    def summarize(self, output: Output) -> str:
        return f"{len(output.shots)} shots: " + ", ".join(f"#{s.index} {s.span}" for s in output.shots)


class OutlineTool(Tool):
    name = "outline"
    description = "Mask the bright objects in the middle frame of a span, count them, and save an overlay PNG."

    class Input(BaseModel):
        model_config = ConfigDict(extra="forbid")
        span: TimeSpan
        threshold: int = Field(default=200, ge=0, le=255)
        below: float = Field(default=0.0, ge=0.0, lt=1.0, description="mask only below this fraction of the height")

    class Output(BaseModel):
        area: float
        objects: int
        overlay: str

    def run(self, input: Input, ctx: ToolContext) -> Output:
        video = ctx.require_video()
        rgb = frame_at(Path(video.path), (input.span.start + input.span.end) / 2)  # (H, W, 3)
        mask = rgb.mean(axis=2) >= input.threshold  # (H, W)
        mask[: int(input.below * mask.shape[0])] = False
        overlay = rgb.copy()
        overlay[mask] = (0.4 * overlay[mask] + 0.6 * np.array([40, 220, 90])).astype(np.uint8)
        out = ctx.workdir / "overlays"
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"outline_{input.span.start:.0f}_{input.span.end:.0f}.png"
        Image.fromarray(overlay).resize((320, 180)).save(path)
        import cv2  # the perception extra; imported here so the other trace tests run without it

        objects = cv2.connectedComponents(mask.astype(np.uint8))[0] - 1  # minus the background
        return self.Output(area=round(float(mask.mean()), 4), objects=objects, overlay=str(path))

    def summarize(self, output: Output) -> str:
        return f"{output.objects} bright objects covering {output.area:.1%} of the frame"


class UsagePolicy:
    """Gives pre-written decisions, reporting token usage like a cached model session."""

    name = "list"

    def __init__(self, decisions: list, raw_outputs: list[str]):
        self.decisions, self.raw_outputs = decisions, raw_outputs

    def decide(self, context: Context, tools):
        index = len({e.step for e in context if e.kind in ("tool_call", "answer")})
        if index >= len(self.decisions):
            raise PolicyError("out of decisions")
        prompt = 900 + 140 * len(context)
        reused = 0 if index == 0 else 900 + 140 * (len(context) - 3)
        usage = Usage(
            prompt_tokens=prompt, prefilled_tokens=prompt - reused, reused_tokens=reused,
            generated_tokens=40 + 7 * index, cache_bytes=prompt * 2048 * 2, latency_s=0.4 + 0.1 * index,
            raw_output=self.raw_outputs[index],
        )
        return self.decisions[index].model_copy(update={"usage": usage})


def _decisions(variant: str) -> tuple[list, list[str]]:
    look = {"start": 6.0, "end": 12.0} if variant != "variant" else {"start": 12.0, "end": 18.0}
    if variant == "xss":
        return ([FinalAnswer(text=f"seven {XSS_SCRIPT} {XSS_IMG}", option="C", thought=f"{XSS_SCRIPT} then {XSS_IMG}")],
                [f"<think>{XSS_SCRIPT}</think><answer>{XSS_IMG}</answer>"])
    decisions = [
        ToolCalls(calls=(CallRequest(tool="keyframes", arguments={"count": 4}),),
                  thought="Split the video into shots and look at a keyframe of each to find the night scene."),
        ToolCalls(calls=(CallRequest(tool="outline", arguments={"span": look}),
                         CallRequest(tool="keyframes", arguments={"count": "many"})),
                  thought="Shot 2 is the night scene; outline the bright boats in it."),
        FinalAnswer(text="seven", thought="The outline of the night shot shows the boats on the sea: seven of them."),
        FinalAnswer(text="seven", option="C", evidence=("e8",), thought="Answer with the option letter this time."),
    ]
    raws = ['<tool_call>{"name": "keyframes"}</tool_call>', '<tool_call>{"name": "outline"}</tool_call>',
            "<answer>seven</answer>", "<answer option=C evidence=e8>seven</answer>"]
    return decisions, raws


def make_episode(workdir: Path, variant: str = "main", trace: Path | None = None) -> Path:
    """Run one episode on the sample video and return its trace path.

    Variants: ``main`` (keyframes, an outline, a rejected then an accepted answer),
    ``variant`` (the same task but it outlines a different span), ``xss`` (model
    output full of HTML that must be shown as text).
    """
    decisions, raws = _decisions(variant)
    # Built-in checks only: these episodes exercise the viewer, not evidence support.
    agent = Agent(policy=UsagePolicy(decisions, raws), tools=ToolRegistry([KeyframesTool, OutlineTool]),
                  workdir=workdir, verifier=Verifier())
    trace = trace or workdir / f"{variant}.jsonl"
    with agent:
        for _ in agent.stream(SAMPLE, "How many ships does the keeper count at night?",
                              ["five", "six", "seven", "eight"], trace_path=trace, thread_id=f"viewer-{variant}"):
            pass
    return trace


@pytest.fixture(scope="session")
def episodes(tmp_path_factory) -> dict[str, Path]:
    """Traces of the three variants, each from its own workdir."""
    root = tmp_path_factory.mktemp("episodes")
    return {v: make_episode(root / v, v) for v in ("main", "variant", "xss")}


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Debian chromium is not installed (apt-get install -y --no-install-recommends chromium)")
    return path
