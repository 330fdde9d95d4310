"""Scripted plans' Jinja templates stay sandboxed: escape payloads give a typed error and run nothing.

A task file is something people share, and a scripted plan's templates are
code in it. Each payload below is a known way out of a Jinja environment
(reach ``object`` through ``__class__.__mro__`` and list its subclasses, walk a
global function's ``__globals__`` to ``os``), a way to change what the tools
found (mutating a tool output the template can see), or a way to exhaust the
machine (``'a' * 10**10``). Each must end as a :class:`PolicyError` naming the
template, with a marker file untouched and the tool outputs unchanged.
"""

from __future__ import annotations

import copy

import pytest

from mcr.context import Context, Instruction, ToolCall, ToolResult
from mcr.policies.base import PolicyError
from mcr.policies.scripted import ScriptedPolicy
from mcr.task import PlanStep

OUTPUT = {"text": "seven ships", "segments": [{"text": "seven ships", "span": {"start": 6, "end": 12}}]}


def _payloads(marker: str) -> dict[str, str]:
    touch = f"touch {marker}"
    return {
        "mro subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "tuple base subclasses": "{{ ().__class__.__base__.__subclasses__() }}",
        "for over subclasses": "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
        "cycler globals": "{{ cycler.__init__.__globals__ }}",
        "cycler os.system": "{{ cycler.__init__.__globals__.os.system('" + touch + "') }}",
        "joiner globals": "{{ joiner.__init__.__globals__ }}",
        "namespace globals": "{{ namespace.__init__.__globals__ }}",
        "lipsum os.popen": "{{ lipsum.__globals__['os'].popen('" + touch + "').read() }}",
        "helper __globals__ (whole expression)": "{{ find.__globals__ }}",
        "helper builtins open": "{{ find.__globals__['__builtins__']['open']('/etc/passwd').read() }}",
        "helper __code__": "{{ find.__code__ }}",
        "closure cell": "{{ spoken.__closure__ }}",
        "self globals": "{{ self.__init__.__globals__ }}",
        "TemplateReference internals": "{{ self._TemplateReference__context }}",
        "attr filter": "{{ ''|attr('__class__') }}",
        "format string attribute": "{{ '{0.__class__.__mro__}'.format('') }}",
        "type mro": "{{ dict.mro() }}",
        "namespace class": "{% set x = namespace() %}{{ x.__class__ }}",
        "mutate a tool output": "{{ results.transcribe.update({'text': 'five'}) }}",
        "mutate a list": "{{ results.transcribe.segments.pop() }}",
        "huge range": "{{ range(10**9)|list|length }}",
        "huge string": "{{ 'a' * 10**10 }}",
        "huge power": "{{ 2 ** (10 ** 7) }}",
        "flask-style config": "{{ config.__class__.__init__.__globals__ }}",
    }


def _context() -> Context:
    ctx = Context([Instruction(id="e0", text="How many ships?", options=["five", "seven"])])
    ctx.append(ToolCall(step=1, tool="transcribe", arguments={}))
    ctx.append(ToolResult(step=1, refs=("e1",), tool="transcribe", output=copy.deepcopy(OUTPUT), summary="seven ships"))
    return ctx


def test_escape_payloads_give_a_policy_error_and_run_nothing(tmp_path, ledger):
    marker = tmp_path / "pwned"
    for name, payload in _payloads(str(marker)).items():
        for where in ("answer", "think", "call argument"):
            ctx = _context()
            if where == "answer":
                step = PlanStep(answer=payload)
            elif where == "think":
                step = PlanStep(think=payload, answer="x")
            else:
                step = PlanStep(call="search", args={"query": payload})
            with pytest.raises(PolicyError) as err:
                ScriptedPolicy([PlanStep(call="transcribe"), step]).decide(ctx, [])
            assert "scripted plan template" in str(err.value) and payload[:20] in str(err.value)
            assert not marker.exists(), f"{name} ran a command"
            assert ctx.results_of("transcribe")[-1].output == OUTPUT, f"{name} changed a tool output"
        ledger.case("security", f"jinja sandbox: {name}", outcome="PolicyError; nothing ran, outputs unchanged",
                    message=str(err.value))


def test_the_sandbox_still_runs_ordinary_templates():
    ctx = _context()
    step = PlanStep(answer="{{ spoken('seven').text }}", option="{{ choose(results.transcribe.text) }}")
    decision = ScriptedPolicy([PlanStep(call="transcribe"), step]).decide(ctx, [])
    assert (decision.text, decision.option) == ("seven ships", "B")
    small = PlanStep(answer="{{ 'ab' * 3 }} {{ 2 ** 10 }} {{ results.transcribe.segments | length }}")
    assert ScriptedPolicy([PlanStep(call="transcribe"), small]).decide(ctx, []).text == "ababab 1024 1"
