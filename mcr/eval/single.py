"""Single-pass mode: the same task, one model call over the video and the question, no tools.

To measure what exploring is worth, the baseline must be scored the same way
and run on the same machinery, so a single pass is an episode of the same
graph with everything that makes it an *agent* taken away:

* no tools (an empty registry), a budget of one step and no tool calls;
* verification keeps only the built-in checks (non-empty, a valid option),
  which call no model: evidence support and re-checks are agent features;
* the policy is the task's own. A model policy sees what the first turn of
  an agent sees — the video observation (pixels, for a vision-language
  model; a line naming the file, for the text-only offline default) and the
  question — and answers in that one call.

For the **scripted** policy there is no model to call, so single pass means
its plan without the exploration: only the plan's first answer step is kept,
citing nothing, and its templates render with no tool results. A plan that answers from
evidence (``spoken('ships')``) then has nothing to answer from: the baseline
of a scripted plan is what it can say without looking, usually nothing.

The trace, the scoring and the metrics are those of an agent run, so
`mcr eval --compare` can set the two side by side.
"""

from __future__ import annotations

from mcr.task import Budget, ScriptedPolicySpec, TaskSpec, VerifySettings
from mcr.tools.base import ToolRegistry


class SinglePassUnavailable(ValueError):
    """The task's policy cannot answer in one pass (a scripted plan with no answer step)."""


def single_pass_budget(task: TaskSpec) -> Budget:
    """One policy turn, no tool calls; the task's wall-time and token limits stay."""
    return Budget(max_steps=1, max_tool_calls=0, wall_time_s=task.budget.wall_time_s, max_tokens=task.budget.max_tokens)


SINGLE_PASS_VERIFY = VerifySettings(evidence=False, recheck=False, require_evidence=False)


def single_pass_task(task: TaskSpec) -> TaskSpec:
    """The task as a single pass runs it: no tools; a scripted plan keeps only its answer steps.

    Raises:
        SinglePassUnavailable: a scripted plan that never answers.
    """
    update: dict = {"tools": [], "budget": single_pass_budget(task), "verify": SINGLE_PASS_VERIFY}
    if isinstance(task.policy, ScriptedPolicySpec):
        answers = [step for step in task.policy.plan if step.answer is not None]
        if not answers:
            raise SinglePassUnavailable(f"task {task.name!r}: its scripted plan has no answer step to run in one pass")
        # Nothing was looked at, so there is nothing to cite.
        update["policy"] = ScriptedPolicySpec(name="scripted", plan=[answers[0].model_copy(update={"evidence": []})])
    single = task.model_copy(update=update)
    single._source = task._source
    return single


def empty_registry() -> ToolRegistry:
    return ToolRegistry()
