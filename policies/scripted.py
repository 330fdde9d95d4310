"""A policy that follows a plan written in the task YAML.

It is the deterministic driver for tests and demos: the same plan over the same
tool outputs gives the same episode. It may still *use* what the tools found,
through small sandboxed Jinja2 templates, so a demo can answer from a real
transcript rather than from a hard-coded string.

Template variables:
    results   last output of each tool, by tool name (``results.transcribe.text``)
    all_results  every output of each tool, oldest first
    question, options
Template helpers:
    find(items, keyword, field="text")  first item whose ``field`` contains the
                                        keyword (case-insensitive), else None
    spoken(keyword)                     the first transcript segment that says it
    choose(text)                        the letter of the option that ``text``
                                        mentions (None if none or several)

The policy keeps no state of its own: its position in the plan is the number of
decisions already in the context, so a resumed episode continues where it was.
"""

from __future__ import annotations

import re
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from mcr.context import Answer, Context, ToolCall, ToolResult, option_table
from mcr.policies.base import CallRequest, Decision, FinalAnswer, PolicyError, ToolCalls
from mcr.task import PlanStep, ScriptedPolicySpec

_WHOLE_EXPRESSION = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.S)
MAX_TEMPLATE_ITEMS = 1_000_000  # the largest string or list a template may build with * (and exponents up to 64)


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's sandbox (no dunder or internal attributes, no mutating tool outputs), plus no huge values:
    ``'a' * 10**10`` or ``9**9**9`` would exhaust memory or CPU before any timeout."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        sizes = [len(x) for x in (left, right) if isinstance(x, (str, list, tuple))]
        counts = [x for x in (left, right) if isinstance(x, int)]
        if operator == "*" and sizes and counts and sizes[0] * max(counts[0], 0) > MAX_TEMPLATE_ITEMS:
            raise SecurityError(f"a template may not build more than {MAX_TEMPLATE_ITEMS:,} items with *")
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64 and left not in (0, 1, -1):
            raise SecurityError("a template may not raise to a power above 64")
        return super().call_binop(context, operator, left, right)


class ScriptedPolicy:
    """Decide by following ``plan``, one step per turn."""

    name = "scripted"

    def __init__(self, plan: list[PlanStep] | ScriptedPolicySpec, start_after_step: int = 0):
        """Args:
            plan: the steps, or the task's policy spec.
            start_after_step: decisions up to this step are not the plan's (a
                plan that continues a replayed episode forked at that step).
        """
        self.plan = plan.plan if isinstance(plan, ScriptedPolicySpec) else list(plan)
        self.start_after_step = start_after_step
        self._env = _Sandbox(undefined=StrictUndefined, autoescape=False)

    def decisions_made(self, context: Context) -> int:
        """How many plan steps were used: distinct steps (after the start) that called or answered."""
        return len({e.step for e in context if isinstance(e, (ToolCall, Answer)) and e.step > self.start_after_step})

    def decide(self, context: Context, tools: list[dict[str, Any]]) -> Decision:
        index = self.decisions_made(context)
        if index >= len(self.plan):
            raise PolicyError(f"the scripted plan has {len(self.plan)} steps and all were used")
        step = self.plan[index]
        variables = self._variables(context)
        thought = self._render(step.think, variables) if step.think else None
        if step.answer is not None:
            return FinalAnswer(
                text=str(self._render(step.answer, variables)),
                option=_none_if_empty(self._render(step.option, variables)) if step.option else None,
                evidence=tuple(self._evidence(step.evidence, context)),
                low_confidence=step.confidence == "low",
                thought=thought,
            )
        calls = [
            CallRequest(tool=c.tool, arguments={k: self._render_value(v, variables) for k, v in c.args.items()})
            for c in step.planned_calls()
        ]
        return ToolCalls(calls=tuple(calls), thought=thought)

    # -- templates ------------------------------------------------------------ #
    def _variables(self, context: Context) -> dict[str, Any]:
        all_results: dict[str, list[dict[str, Any]]] = {}
        for entry in context.of_kind(ToolResult):
            all_results.setdefault(entry.tool, []).append(entry.output)
        instruction = context.instruction
        options = list(instruction.options or []) if instruction else []
        results = {name: outputs[-1] for name, outputs in all_results.items()}

        def spoken(keyword: str) -> dict[str, Any] | None:
            transcript = results.get("transcribe") or {}
            return find(transcript.get("segments", []), keyword)

        def choose(text: Any) -> str | None:
            if not text:
                return None
            words = set(re.findall(r"[\w']+", str(text).lower()))
            hits = [
                letter
                for letter, option in option_table(options).items()
                if set(re.findall(r"[\w']+", option.lower())) <= words
            ]
            return hits[0] if len(hits) == 1 else None

        return {
            "results": results,
            "all_results": all_results,
            "question": instruction.text if instruction else "",
            "options": options,
            "find": find,
            "spoken": spoken,
            "choose": choose,
        }

    def _render(self, template: str | None, variables: dict[str, Any]) -> Any:
        if template is None:
            return None
        try:
            whole = _WHOLE_EXPRESSION.match(template)
            if whole and "}}" not in whole.group(1):
                value = self._env.compile_expression(whole.group(1), undefined_to_none=False)(**variables)
                if isinstance(value, Undefined):  # an unsafe or missing attribute: make it fail here, not later
                    str(value)
                return value
            return self._env.from_string(template).render(**variables)
        except (TemplateError, TypeError, AttributeError, KeyError, ValueError, IndexError, ArithmeticError) as exc:
            raise PolicyError(f"scripted plan template {template!r} failed: {exc}") from None

    def _render_value(self, value: Any, variables: dict[str, Any]) -> Any:
        if isinstance(value, str) and "{{" in value:
            return self._render(value, variables)
        if isinstance(value, dict):
            return {k: self._render_value(v, variables) for k, v in value.items()}
        if isinstance(value, list):
            return [self._render_value(v, variables) for v in value]
        return value

    @staticmethod
    def _evidence(names: list[str], context: Context) -> list[str]:
        """Entry ids for the plan's evidence: ids as given, tool names → last result."""
        ids = []
        for name in names:
            if context.get(name) is not None:
                ids.append(name)
                continue
            results = context.results_of(name)
            if not results:
                raise PolicyError(f"scripted answer cites {name!r}, which is neither an entry id nor a tool with results")
            ids.append(results[-1].id)
        return ids


def find(items: Any, keyword: str, field: str = "text") -> Any:
    """First item (dict or object) whose `field` contains `keyword`, ignoring case."""
    needle = str(keyword).lower()
    for item in items or []:
        value = item.get(field) if isinstance(item, dict) else getattr(item, field, None)
        if value is not None and needle in str(value).lower():
            return item
    return None


def _none_if_empty(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text if text and text != "None" else None
