"""InternVideo3's evaluation defaults, per benchmark, as settings a task can carry.

Why: a score is only comparable with the paper's when the model sees the video
the way InternVideo3's own evaluation showed it — the same frame rate, pixel
budget per frame and frame cap — and is asked in the same words. The numbers
below are read from the evaluation scripts in OpenGVLab/InternVideo,
``InternVideo3/InternVideo3_eval/scripts/`` (file named per preset); each runs
lmms-eval with ``--model_args ...,min_pixels=..,max_pixels=..,fps=4,max_num_frames=N``
and the pixel budgets are written there as ``N * 32 * 32`` (InternVideo3's
vision patch is 16 px with 2x2 merging, so one visual token covers 32x32 px).

A preset maps onto the task's `video_settings` (fps, min_pixels, max_pixels,
max_frames: the frame cap, which replaces Qwen-VL's 768 in sampling), and is
recorded in the task's ``metadata["preset"]`` so reports and adapters see it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mcr.context import option_table
from mcr.task import TaskSpec, VideoSettings

TOKEN = 32 * 32  # pixels per visual token after 2x2 merging of 16 px patches

# InternVideo3's own multiple-choice prompt (eval_vnbench.py, MCQ_PROMPT; options as "A. text" lines).
CHOICE_PROMPT = (
    "Select the best answer to the following multiple-choice question based on the video.\n"
    "{question}\n"
    "{options}\n"
    "Answer with the option letter only."
)
# Its grounding prompt (eval_grounding.py, GROUNDING_PROMPT).
GROUNDING_PROMPT = (
    "Given the video of duration {duration:.1f} seconds, "
    "find the start and end timestamps (in seconds) of the moment that best matches the following description: "
    '"{query}"\n'
)
GROUNDING_PROMPT_NO_DURATION = (
    "Find the start and end timestamps (in seconds) of the moment in the video that best matches "
    'the following description: "{query}"\n'
)


class Preset(BaseModel):
    """One benchmark's evaluation settings, with where each number came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    fps: float = Field(gt=0)
    min_pixels: int = Field(gt=0)
    max_pixels: int = Field(gt=0)
    max_frames: int = Field(ge=1)
    prompt: Literal["choice", "grounding"] = "choice"
    lmms_task: str = Field(description="the lmms-eval task the script runs")
    source: str = Field(description="InternVideo3_eval/scripts/ file the numbers come from")

    def video_settings(self) -> VideoSettings:
        return VideoSettings(fps=self.fps, min_pixels=self.min_pixels, max_pixels=self.max_pixels,
                             max_frames=self.max_frames)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(name="videomme", fps=4, min_pixels=256 * TOKEN, max_pixels=256 * TOKEN, max_frames=1024,
               lmms_task="videomme", source="eval_videomme.sh"),
        Preset(name="lvbench", fps=4, min_pixels=256 * TOKEN, max_pixels=256 * TOKEN, max_frames=1024,
               lmms_task="lvbench", source="eval_lvbench.sh"),
        Preset(name="mlvu", fps=4, min_pixels=256 * TOKEN, max_pixels=256 * TOKEN, max_frames=2048,
               lmms_task="mlvu_dev", source="eval_mlvu.sh"),
        Preset(name="longvideobench", fps=4, min_pixels=256 * TOKEN, max_pixels=256 * TOKEN, max_frames=2048,
               lmms_task="longvideobench_val_v", source="eval_longvideobench.sh"),
        Preset(name="egoschema", fps=4, min_pixels=64 * TOKEN, max_pixels=128 * TOKEN, max_frames=2048,
               lmms_task="egoschema", source="eval_egoschema.sh"),
        Preset(name="charades_sta", fps=4, min_pixels=256 * TOKEN, max_pixels=256 * TOKEN, max_frames=512,
               prompt="grounding", lmms_task="temporal_grounding_charades", source="eval_chara.sh"),
    )
}


class UnknownPreset(KeyError):
    def __init__(self, name: str):
        super().__init__(name)
        self.message = f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}"

    def __str__(self) -> str:
        return self.message


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise UnknownPreset(name) from None


def apply_preset(task: TaskSpec, preset: Preset | str) -> TaskSpec:
    """The task with the preset's video settings, and the preset recorded in its metadata."""
    preset = get_preset(preset) if isinstance(preset, str) else preset
    metadata = {**task.metadata, "preset": {"name": preset.name, "max_frames": preset.max_frames, "source": preset.source}}
    return task.model_copy(update={"video_settings": preset.video_settings(), "metadata": metadata})


def choice_prompt(question: str, options: list[str]) -> str:
    """The question and options as InternVideo3 asks a multiple-choice question."""
    lines = "\n".join(f"{letter}. {option}" for letter, option in option_table(options).items())
    return CHOICE_PROMPT.format(question=question.strip(), options=lines)


def grounding_question(query: str, duration: float | None) -> str:
    """A grounding query as InternVideo3 asks it (with the video's duration when known)."""
    if duration is None:
        return GROUNDING_PROMPT_NO_DURATION.format(query=query).strip()
    return GROUNDING_PROMPT.format(duration=float(duration), query=query).strip()
