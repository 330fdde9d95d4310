"""Run our agent from lmms-eval: a model class lmms-eval can load, as `--model mcr_agent`.

    python -m lmms_eval --model mcr_agent --model_args policy=offline,max_steps=8 --tasks videomme

Why: benchmark users already drive lmms-eval; with this adapter each request
becomes one agent episode (observe → reason → act → verify) on the request's
video, so lmms-eval's own scoring applies to an exploring agent.

The contract (read from lmms-eval 0.7's `lmms_eval/api/model.py`,
`api/instance.py` and `evaluator.py`):

* `generate_until(requests)`: each `Instance.args` is ``(context,
  generation_kwargs, doc_to_visual, doc_id, task, split)``, or for chat
  models ``(context, doc_to_messages, generation_kwargs, doc_id, task,
  split)``; the document is ``self.task_dict[task][split][doc_id]``. Returns
  one answer per request (a `GenerationResult` with token counts when
  lmms-eval is importable). Multiple-choice options are read back out of the
  context ('A. ...' or '(A) ...' lines), so the agent answers with a letter.
* `generate_until_multi_round`: rounds continue while the task's
  ``doc_to_text(doc, previous_output=, round_idx=, previous_round_info=)``
  returns a 5-tuple without its terminal signal; one episode per round.
* Agentic tasks (``output_type: generate_until_agentic``): lmms-eval's
  evaluator drives the rounds itself and calls `generate_until` once per round
  (for `is_simple` models), so they need nothing more here.
* `loglikelihood`: an agent has no likelihood of a given continuation; it
  raises `NotSupportedError` naming the generate_until variant to use.

When lmms-eval is not installed the class keeps the same methods on a plain
base, so it can still be driven with Instance-shaped requests.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mcr.context import OPTION_LETTERS
from mcr.task import Budget, TaskSpec

try:  # the real base class when lmms-eval is installed (the Makefile installs it with --no-deps)
    from lmms_eval.api.instance import GenerationResult, TokenCounts
    from lmms_eval.api.model import lmms as _Base

    HAVE_LMMS_EVAL = True
except ImportError:  # pragma: no cover - exercised only without lmms-eval
    _Base, GenerationResult, TokenCounts = object, None, None
    HAVE_LMMS_EVAL = False

MODEL_ID = "mcr_agent"
_OPTION = re.compile(r"^\s*(?:\(([A-Z])\)|([A-Z])[.:])\s+(.+?)\s*$")


class NotSupportedError(NotImplementedError):
    """lmms-eval asked for something an agent cannot give (log-likelihoods)."""


class AdapterInputError(ValueError):
    """A request or model argument the adapter cannot use; says which and what to do."""


def split_context(context: str) -> tuple[str, list[str] | None]:
    """An lmms-eval prompt → (the prompt without its option lines, the option texts or None).

    Options are consecutive lettered lines from A; everything else (the
    instructions before and after them) stays in the question.
    """
    kept, options = [], []
    for line in context.splitlines():
        match = _OPTION.match(line)
        letter = match and (match.group(1) or match.group(2))
        if match and letter == OPTION_LETTERS[len(options) % len(OPTION_LETTERS)]:
            options.append(match.group(3))
        else:
            kept.append(line)
    question = "\n".join(kept).strip()
    return (question or context.strip()), (options if len(options) >= 2 else None)


def manifest() -> Any:
    """lmms-eval's entry point (group ``lmms_eval.models``): registers `mcr_agent`."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id=MODEL_ID, simple_class_path=f"{__name__}.MCRAgent")


class MCRAgent(_Base):  # type: ignore[misc, valid-type]
    """An lmms-eval model whose every answer is one MCR agent episode.

    Args (lmms-eval's ``--model_args``, all strings there):
        policy: offline (default), internvideo3, or scripted with ``plan=FILE``.
        model: the model folder for a model policy (its ``settings.model``).
        plan: a YAML file holding a task's ``policy:`` (for ``policy=scripted``).
        tools: '+'-separated tool names (default: all registered).
        max_steps, max_tool_calls, wall_time_s: the episode's budget.
        preset: an InternVideo3 preset (mcr.eval.presets) for the video settings.
        workdir: traces and checkpoints (default .mcr/lmms_eval).
    """

    is_simple = True

    def __init__(self, policy: str = "offline", model: str | None = None, plan: str | None = None,
                 tools: str | None = None, max_steps: int | str = 8, max_tool_calls: int | str = 10,
                 wall_time_s: float | str = 300, preset: str | None = None, workdir: str = ".mcr/lmms_eval",
                 batch_size: int | str = 1, device: str | None = None, **unknown: Any):
        super().__init__()
        if unknown:
            raise AdapterInputError(f"unknown model_args for {MODEL_ID}: {', '.join(sorted(unknown))}; known: policy, "
                                    "model, plan, tools, max_steps, max_tool_calls, wall_time_s, preset, workdir")
        if int(batch_size) != 1:
            raise AdapterInputError(f"{MODEL_ID} runs one episode at a time: use --batch_size 1")
        if not HAVE_LMMS_EVAL:
            self.task_dict: dict[str, Any] = {}
        self.template = self._template(policy, model, plan, tools, Budget(
            max_steps=int(max_steps), max_tool_calls=int(max_tool_calls), wall_time_s=float(wall_time_s)), preset)
        self.workdir = Path(workdir)
        self._agent: Any = None
        self.episodes: list[dict[str, Any]] = []  # one record per episode: request, answer, trace, stop reason

    @staticmethod
    def _template(policy: str, model: str | None, plan: str | None, tools: str | None, budget: Budget,
                  preset: str | None) -> TaskSpec:
        """The settings every episode shares, as a task (video and question come per request)."""
        if policy == "scripted":
            if plan is None:
                raise AdapterInputError("policy=scripted needs plan=FILE (a YAML file with a task's 'policy:' key)")
            import yaml

            spec = (yaml.safe_load(Path(plan).read_text(encoding="utf-8")) or {}).get("policy")
            if not spec:
                raise AdapterInputError(f"{plan}: no 'policy:' key with a scripted plan")
        else:
            spec = {"name": policy, "settings": {"model": model} if model else {}}
        task = TaskSpec.model_validate({"video": ".", "question": "-", "policy": spec, "budget": budget.model_dump(),
                                        "tools": tools.split("+") if tools else None})
        if preset:
            from mcr.eval.presets import apply_preset

            task = apply_preset(task, preset)
        return task

    @property
    def agent(self) -> Any:
        """Built once (a model policy loads its weights once), on first use."""
        if self._agent is None:
            from mcr.agent import Agent

            self._agent = Agent.from_task(self.template, workdir=self.workdir)
        return self._agent

    # -- lmms-eval's interface ------------------------------------------------ #
    def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
        raise NotSupportedError(f"{MODEL_ID} answers by exploring the video and has no log-likelihoods; run the "
                                "generate_until variant of the task (e.g. egoschema, not egoschema_mcppl)")

    def generate_until(self, requests: list[Any]) -> list[Any]:
        outputs = []
        for request in requests:
            context, visuals = self._unpack(request)
            outputs.append(self._answer(request, context, visuals))
        return outputs

    def generate_until_multi_round(self, requests: list[Any]) -> list[list[str]]:
        results = []
        for request in requests:
            context, gen_kwargs, doc_to_visual, doc_to_text, doc_id, task, split = request.args
            doc = self.task_dict[task][split][doc_id]
            visuals, rounds, info, round_idx = doc_to_visual(doc), [], None, 0
            while True:
                rounds.append(_text(self._answer(request, context, visuals)))
                round_idx += 1
                step = doc_to_text(doc, previous_output=rounds, round_idx=round_idx, previous_round_info=info)
                if not (isinstance(step, tuple) and len(step) == 5):
                    break
                next_visuals, next_context, terminal, updated, info = step
                if updated is not None:
                    rounds = list(updated)
                if terminal:
                    break
                context = next_context if next_context is not None else context
                visuals = next_visuals if next_visuals is not None else visuals
            results.append(rounds)
        return results

    # -- one request = one episode ------------------------------------------- #
    def _unpack(self, request: Any) -> tuple[str, list[Any]]:
        args = request.args
        if len(args) != 6:
            raise AdapterInputError(f"a generate_until request has 6 arguments, this one {len(args)}: {args!r:.200}")
        context, second, third, doc_id, task, split = args
        doc = self.task_dict[task][split][doc_id]
        if isinstance(second, dict):  # simple models: (context, generation_kwargs, doc_to_visual, ...)
            return context, list(third(doc) or [])
        messages = second(doc)  # chat models: (context, doc_to_messages, generation_kwargs, ...)
        return context, [part.get("url") for message in messages for part in message.get("content") or []
                         if isinstance(part, dict) and part.get("type") == "video"]

    def _answer(self, request: Any, context: str, visuals: list[Any]) -> Any:
        videos = [v for v in visuals if isinstance(v, (str, Path)) and Path(v).is_file()]
        if not videos:
            raise AdapterInputError(f"request {getattr(request, 'doc_id', '?')} of task {getattr(request, 'task_name', '?')} "
                                    f"has no video file among its visuals ({[type(v).__name__ for v in visuals]}); "
                                    f"{MODEL_ID} answers questions about videos only")
        question, options = split_context(context)
        usage = {"prompt_tokens": 0, "generated_tokens": 0}
        for step in self.agent.stream(videos[0], question, options):
            for key in usage:
                usage[key] += int((step.usage or {}).get(key) or 0)
        result = self.agent.result(self.agent.last_thread_id)
        text = (result.option if options and result.option else result.answer) or ""
        self.episodes.append({"task": getattr(request, "task_name", None), "doc_id": getattr(request, "doc_id", None),
                              "video": str(videos[0]), "answer": text, "stop_reason": result.stop_reason,
                              "trace": str(result.trace_path), "usage": usage})
        if GenerationResult is None:
            return text
        return GenerationResult(text=text, token_counts=TokenCounts(input_tokens=usage["prompt_tokens"],
                                                                    output_tokens=usage["generated_tokens"]))


def _text(output: Any) -> str:
    return output.text if hasattr(output, "text") else str(output)
