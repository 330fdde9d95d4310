"""`verify_answer`: check a candidate answer against the evidence *before* proposing it.

The verify node judges every proposed answer anyway; this tool lets the policy
ask the same judge first, so it can gather more evidence instead of spending a
turn on a rejection. It runs the built-in checks of :mod:`mcr.verify` plus the
evidence checks of :mod:`mcr.tools.evidence` (support by the cited text, option
consistency, earlier verdicts) and, with ``recheck`` and a model session, a
second look at the cited spans at a higher frame rate through a forked session.

The candidate is judged in a copy of the context: nothing is appended.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mcr.context import Context, Memory, ToolResult
from mcr.tools.base import Tool, ToolContext, ToolFailure
from mcr.tools.evidence import build_verifier


class VerifyInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: str = Field(min_length=1, description="the candidate answer")
    option: str | None = Field(default=None, description="its option letter, for multiple-choice questions")
    evidence: list[str] = Field(default_factory=list, description="ids of the entries it relies on, e.g. ['e4']")
    recheck: bool = Field(default=False, description="also re-inspect the cited spans with the video model")


class VerifyOutput(BaseModel):
    accepted: bool
    reason: str = Field(description="why not, and what to do; 'all checks passed' when accepted")
    checks: dict[str, bool] = Field(description="each check's result, by name")


class VerifyAnswerTool(Tool):
    name = "verify_answer"
    description = (
        "Check a candidate answer before proposing it: do the cited entries exist and support it, "
        "does it agree with the options and earlier verdicts (recheck=true: the model looks again)."
    )
    Input = VerifyInput
    Output = VerifyOutput

    def run(self, input: VerifyInput, ctx: ToolContext) -> VerifyOutput:
        text = input.answer.strip()
        if not text:
            raise ToolFailure("the answer is empty: give the candidate answer to check", "empty_answer")
        has_evidence = any(isinstance(e, (ToolResult, Memory)) for e in ctx.context)
        if not has_evidence:
            raise ToolFailure("there is no evidence yet to check an answer against: call a tool "
                              "(transcribe, summarize, ground, search) first", "no_evidence")
        if input.recheck:
            ctx.require_model("recheck (call again with recheck=false)", vision=True)
        verifier = build_verifier(ctx.model, recheck=input.recheck)
        scratch = Context(list(ctx.context), system_prompt=ctx.context.system_prompt)
        candidate = scratch.append(scratch.propose_answer(step=ctx.step, text=text, option=input.option,
                                                          evidence=input.evidence))
        verdict = verifier.verify(candidate, scratch)
        return VerifyOutput(accepted=verdict.accepted, reason=verdict.reason, checks=verdict.checks)

    def summarize(self, output: VerifyOutput) -> str:
        word = "would be accepted" if output.accepted else "would be rejected"
        return f"{word}: {output.reason}"
