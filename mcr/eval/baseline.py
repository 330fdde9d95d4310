"""The scripted baseline: a fixed plan for suite tasks that bring none (``mcr eval --policy scripted``).

Benchmark suites (the bundled truth suite, imported benchmarks) carry
questions and truths, not plans. A scripted run over them still needs a
deterministic, model-free driver, so tasks without a plan get this one — a
retrieval baseline written as an ordinary scripted plan, with the same
sandboxed templates a user would write:

1. call ``transcribe``, then ``summarize`` (shots → OCR of each keyframe + what
   is said during it);
2. pick the shot whose text shares the most content words with the question;
3. answer with that shot's text; for multiple choice, the option it names
   (``choose``; if it names none, the first shot that names exactly one);
   for "how many scenes/shots" questions, the option naming the
   number of shots; for grounding questions, the shot's span as
   "from S to E seconds".

It cites the ``summarize`` result. It reads real tool output and nothing else,
so its score is what OCR, speech recognition and word overlap can do: it
cannot see colours or photographs, and it has no notion of order.
"""

from __future__ import annotations

from mcr.task import PlanStep, ScriptedPolicySpec, TaskSpec

_STOP = (
    "a an the of in on at to is are was were be does do did what which who whom when where why how this that these "
    "those it its video scene scenes shown screen narration narrator says say said according while with for and or "
    "from by as first last answer seconds time start end there".split()
)
_PUNCT = "".join(f" | replace({c!r}, ' ')" for c in "?,.!:;\"'/()")

# One preamble per template (each template renders on its own): the best-matching shot into ns.best.
_BEST_SHOT = (
    "{%- set stop = " + repr(_STOP) + " -%}"
    "{%- set qw = (question | lower" + _PUNCT + ").split() | reject('in', stop) | list -%}"
    "{%- set ns = namespace(best=none, score=-1) -%}"
    "{%- for shot in (results.summarize.shots if results.summarize else []) -%}"
    "{%- set words = (shot.text | lower" + _PUNCT + ").split() -%}"
    "{%- set s = qw | select('in', words) | list | length -%}"
    "{%- if s > ns.score -%}{%- set ns.best = shot -%}{%- set ns.score = s -%}{%- endif -%}"
    "{%- endfor -%}"
)
_COUNT_WORDS = "zero one two three four five six seven eight nine ten eleven twelve".split()
_COUNTING = "{%- set counting = ('how many scenes' in (question | lower)) or ('how many shots' in (question | lower)) -%}"

ANSWER = (
    _BEST_SHOT + _COUNTING
    + "{%- if counting and results.summarize -%}"
    + "The video has {{ results.summarize.shots | length }} scene(s)."
    + "{%- elif ns.best -%}from {{ ns.best.span.start }} to {{ ns.best.span.end }} seconds: {{ ns.best.text }}"
    + "{%- else -%}nothing found{%- endif -%}"
)
OPTION = (
    _BEST_SHOT + _COUNTING
    + "{%- if counting and results.summarize and (results.summarize.shots | length) < 13 -%}"
    + "{{ choose(" + repr(_COUNT_WORDS) + "[results.summarize.shots | length]) or '' }}"
    # The best shot's option; if it names none (or several), the first shot that names exactly one.
    + "{%- elif ns.best -%}{%- set pick = namespace(letter=choose(ns.best.text)) -%}"
    + "{%- for shot in results.summarize.shots if not pick.letter -%}{%- set pick.letter = choose(shot.text) -%}{%- endfor -%}"
    + "{{ pick.letter or '' }}{%- endif -%}"
)


def baseline_plan(multiple_choice: bool) -> ScriptedPolicySpec:
    answer = PlanStep(think="Answer from the shot whose text matches the question best.", answer=ANSWER,
                      option=OPTION if multiple_choice else None, evidence=["summarize"])
    return ScriptedPolicySpec(name="scripted", plan=[
        PlanStep(think="Listen first, so the shot summaries carry what is said.", call="transcribe"),
        PlanStep(think="Summarise the shots: on-screen text and speech.", call="summarize"),
        answer,
    ])


def with_baseline_plan(task: TaskSpec) -> TaskSpec:
    """The task driven by the baseline plan (its tools are added to the task's, if it lists them)."""
    update: dict = {"policy": baseline_plan(bool(task.options))}
    if task.tools is not None:
        update["tools"] = [*task.tools, *(t for t in ("transcribe", "summarize") if t not in task.tools)]
    out = task.model_copy(update=update)
    out._source = task._source
    return out
