"""`video_info`: the video's basic facts (duration, frame rate, size, audio).

The cheapest look at a video: stream metadata and one decoded frame (for rotation). Useful to a policy planning
where to look, and to check that a span it wants to inspect exists.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from mcr.model.media.video import VideoError, probe
from mcr.tools.base import Tool, ToolContext, ToolFailure


class VideoInfoTool(Tool):
    name = "video_info"
    description = "Report the video's duration (seconds), frame rate, size and whether it has audio."

    class Input(BaseModel):
        model_config = ConfigDict(extra="forbid")

    class Output(BaseModel):
        duration: float
        fps: float
        width: int
        height: int
        has_audio: bool

    def run(self, input: Input, ctx: ToolContext) -> Output:
        video = ctx.require_video()
        try:
            info = probe(video.path)
        except VideoError as exc:
            raise ToolFailure(str(exc), "unreadable_video") from None
        return self.Output(duration=round(info.duration, 3), fps=round(info.fps, 3), width=info.width,
                           height=info.height, has_audio=info.has_audio)

    def summarize(self, output: Output) -> str:
        audio = "with audio" if output.has_audio else "no audio"
        return f"{output.duration:.1f} s, {output.width}x{output.height}, {output.fps:.1f} fps, {audio}"
