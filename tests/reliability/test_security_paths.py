"""Tools read only the task's media and the run's output folder.

A plugin tool (loaded from a file, as a user's would be) takes an image path,
a mask ``Path``, a list of keyframes and a nested dict of inputs, and returns
the first bytes of each file it is given. The model asks it for
``/etc/passwd``, ``../../x``, a symlink inside the media folder that points
out, a NUL byte, and for files that are allowed. Through the real graph, every
path outside is a ToolError typed ``path_outside_task`` (or ``invalid_path``)
and the tool never runs; the allowed calls run.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from mcr.agent import Agent
from mcr.context import Context, VideoRef
from mcr.policies.scripted import ScriptedPolicy
from mcr.task import Budget, PlanStep
from mcr.tools.base import ToolContext, ToolRegistry, load_plugin
from mcr.tools.errors import ToolFailure
from mcr.verify import Verifier

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "media" / "sample.mp4"

PLUGIN = '''
"""A user's tool that reads the files it is given."""
from pathlib import Path
from pydantic import BaseModel, ConfigDict, Field
from mcr.tools.base import Tool

RUNS = []

class PeekTool(Tool):
    name = "peek"
    description = "Read the first bytes of image files, a mask and keyframes."

    class Input(BaseModel):
        model_config = ConfigDict(extra="forbid")
        image: str | None = None
        mask_path: Path | None = None
        keyframes: list[str] = Field(default_factory=list)
        inputs: dict[str, str] = Field(default_factory=dict)
        note: str = ""

    class Output(BaseModel):
        heads: list[str]

    def run(self, input, ctx):
        RUNS.append(input)
        files = [input.image, input.mask_path, *input.keyframes, *input.inputs.values()]
        return self.Output(heads=[Path(f).read_bytes()[:16].hex() for f in files if f])
'''


@pytest.fixture
def task_dir(tmp_path) -> Path:
    media = tmp_path / "task" / "media"
    media.mkdir(parents=True)
    shutil.copyfile(SAMPLE, media / "sample.mp4")
    (media / "frame.png").write_bytes(b"\x89PNG fake frame")
    (media / "escape.png").symlink_to("/etc/passwd")
    (tmp_path / "secret.txt").write_text("top secret")  # beside the task, not in its media folder
    (tmp_path / "task" / "plugin.py").write_text(textwrap.dedent(PLUGIN))
    return media


def _attacks(media: Path) -> dict[str, dict]:
    rel_up = os.path.relpath(media.parents[1] / "secret.txt", Path.cwd())
    return {
        "/etc/passwd as an image": {"image": "/etc/passwd"},
        "/etc/passwd as a Path": {"mask_path": "/etc/passwd"},
        "../../x": {"image": "../../x"},
        "dot-dot out of the media folder": {"image": str(media / ".." / ".." / "secret.txt")},
        "relative dot-dot from the working directory": {"keyframes": [rel_up]},
        "a symlink in the media folder pointing out": {"image": str(media / "escape.png")},
        "a keyframe list with one bad entry": {"keyframes": [str(media / "frame.png"), "/etc/shadow"]},
        "nested plugin input (image_path key)": {"inputs": {"image_path": "/etc/hostname"}},
        "home directory": {"image": "~/.ssh/id_rsa"},
        "file URL": {"image": "file:///etc/passwd"},
        "/proc/self/environ": {"mask_path": "/proc/self/environ"},
    }


def test_paths_outside_the_task_are_refused_through_the_graph(task_dir, tmp_path, ledger):
    tools = load_plugin(str(task_dir.parent / "plugin.py"))
    module = __import__(type(tools[0]).__module__)
    attacks = _attacks(task_dir)
    allowed = [{"image": str(task_dir / "frame.png")}, {"mask_path": str(task_dir / "frame.png"), "note": "/etc/passwd"},
               {"inputs": {"image_path": str(task_dir / "frame.png")}}]
    steps = [PlanStep(call="peek", args=args) for args in [*attacks.values(), *allowed]]
    steps.append(PlanStep(call="peek", args={"image": "bad\x00name.png"}))
    steps.append(PlanStep(answer="done"))
    agent = Agent(policy=ScriptedPolicy(steps), tools=ToolRegistry(tools), workdir=tmp_path / "work", verifier=Verifier(),
                  budget=Budget(max_steps=len(steps) + 2, max_tool_calls=len(steps) + 2))
    with agent:
        result = agent.run(task_dir / "sample.mp4", "What is in the files?", thread_id="paths")
    by_call = {}
    for entry in result.context:
        if entry.kind in ("tool_result", "tool_error"):
            by_call[entry.refs[0]] = entry
    outcomes = [by_call[e.id] for e in result.context if e.kind == "tool_call"]
    assert len(outcomes) == len(attacks) + len(allowed) + 1
    for (name, args), outcome in zip(attacks.items(), outcomes):
        assert outcome.kind == "tool_error" and outcome.error_type == "path_outside_task", (name, outcome)
        assert "outside the task's media" in outcome.message
        ledger.case("security", f"tool path: {name}", outcome="ToolError path_outside_task; the tool did not run",
                    message=outcome.message)
    for args, outcome in zip(allowed, outcomes[len(attacks):]):
        assert outcome.kind == "tool_result", (args, outcome)
    nul = outcomes[-1]
    assert nul.kind == "tool_error" and nul.error_type == "invalid_path"
    ledger.case("security", "tool path: a NUL byte", outcome="ToolError invalid_path", message=nul.message)
    assert len(module.RUNS) == len(allowed)  # the refused calls never reached run()
    assert all("top secret" not in str(e) and "root:x:" not in str(e) for e in result.context)  # nothing read


def test_tool_context_allows_the_workdir_and_the_media_folder_only(task_dir, tmp_path):
    work = tmp_path / "work"
    (work / "keyframes").mkdir(parents=True)
    (work / "keyframes" / "k1.png").write_bytes(b"png")
    ctx = ToolContext(context=Context(), video=VideoRef(path=str(task_dir / "sample.mp4")),
                      workdir=work)
    assert ctx.check_path(work / "keyframes" / "k1.png") == (work / "keyframes" / "k1.png").resolve()
    assert ctx.check_path(task_dir / "frame.png").name == "frame.png"
    assert ctx.check_path(work / "not-yet-written.png").parent == work.resolve()  # outputs may be new files
    for bad in ("/etc/passwd", work / ".." / "secret.txt", task_dir / "escape.png", tmp_path / "secret.txt"):
        with pytest.raises(ToolFailure) as err:
            ctx.check_path(bad, "image")
        assert err.value.error_type == "path_outside_task" and "image" in str(err.value)
    no_video = ToolContext(context=Context(), workdir=work)
    with pytest.raises(ToolFailure):
        no_video.check_path(task_dir / "frame.png")


def test_a_tool_can_say_which_fields_are_paths(task_dir, tmp_path):
    """`path_arguments` overrides the name rule: a string field named like a path that is not one."""
    tools = load_plugin(str(task_dir.parent / "plugin.py"))
    peek = tools[0]
    ctx = ToolContext(context=Context(), video=VideoRef(path=str(task_dir / "sample.mp4")), workdir=tmp_path / "w")
    with pytest.raises(ToolFailure):
        peek.prepare({"image": "/etc/passwd"}, ctx)
    type(peek).path_arguments = ("mask_path",)
    try:
        assert peek.prepare({"image": "/etc/passwd"}, ctx).image == "/etc/passwd"  # no longer a path field
        with pytest.raises(ToolFailure):
            peek.prepare({"mask_path": "/etc/passwd"}, ctx)  # a Path value is always checked
    finally:
        type(peek).path_arguments = None


@pytest.mark.parametrize("name", ["../../../escaped", "/tmp/abs-escaped", "a/../../b"])
def test_a_task_name_cannot_place_the_trace_outside_the_workdir(tmp_path, ledger, name):
    """The default trace path is built from the thread id, which comes from the task's name."""
    import yaml

    from mcr.cli import main

    work = tmp_path / "deep" / "er" / "work"
    task = tmp_path / "deep" / "task.yaml"
    task.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SAMPLE, task.parent / "sample.mp4")
    task.write_text(yaml.safe_dump({"name": name, "video": "sample.mp4", "question": "What is it?",
                                    "policy": {"name": "scripted", "plan": [{"answer": "a lighthouse"}]}}))
    before = set(Path("/tmp").glob("abs-escaped*"))
    assert main(["run", str(task), "--workdir", str(work), "-q"]) in (0, 1)
    traces = list(tmp_path.rglob("*.jsonl"))
    assert traces and all(t.parent == work / "traces" for t in traces), traces
    assert set(Path("/tmp").glob("abs-escaped*")) == before
    ledger.case("security", f"task name {name!r} as the trace file name",
                outcome=f"trace written inside the workdir as {traces[0].name}")
