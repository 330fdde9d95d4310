"""Token counts add up: scored candidate replies are counted under their own name, never as prefill.

Before: the demo reported 1,791 tokens "prefilled" of a 1,747-token prompt,
because the tokens of the candidate continuations a policy scores (on forks
of the prompt) were added to ``prefilled_tokens``. Now ``Usage.scored_tokens``
holds them, and the trace, the viewer's payload and chart, the OpenTelemetry
spans and the command line all carry that name, so reused + prefilled =
prompt on every call. Checked on a real session of the tiny Qwen3-VL, through
the real graph, trace, viewer and exporter.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mcr.agent import Agent
from mcr.context import Context
from mcr.model.runtime.loader import load_model
from mcr.model.runtime.session import ModelSession
from mcr.model.runtime.tiny import save_tiny_qwen3vl
from mcr.policies.base import FinalAnswer
from mcr.tools.base import ToolRegistry
from mcr.usage import Usage
from mcr.verify import Verifier

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "media" / "sample.mp4"
CANDIDATES = ["<answer>A</answer>", "<answer>B</answer>", "<answer>C</answer>"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_model(save_tiny_qwen3vl(tmp_path_factory.mktemp("tiny")), dtype="float32")


def _adds_up(usage: Usage) -> None:
    assert usage.prefilled_tokens <= usage.prompt_tokens
    assert usage.cached_tokens + usage.prefilled_tokens == usage.prompt_tokens


def test_scored_continuations_are_not_prefill(tiny):
    session = ModelSession(tiny)
    messages = [{"role": "user", "content": "Pick one of A, B or C."}]
    scores = session.score_continuations(messages, None, CANDIDATES)
    usage = session.last_usage
    _adds_up(usage)
    assert usage.scored_tokens == sum(n for _, n in scores) > 0
    assert usage.spent_tokens == usage.prefilled_tokens + usage.scored_tokens + usage.generated_tokens
    session.score_continuations(messages + [{"role": "assistant", "content": "B"},
                                            {"role": "user", "content": "Again?"}], None, CANDIDATES)
    _adds_up(session.last_usage)  # the second turn reuses the first's cache; still adds up
    assert session.last_usage.reused_tokens > 0


def test_a_forced_reply_prefix_counts_as_prompt_and_prefill(tiny):
    session = ModelSession(tiny)
    gen = session.generate([{"role": "user", "content": "Say something."}], max_new_tokens=3, response_prefix="<answer>")
    _adds_up(gen.usage)
    assert gen.usage.scored_tokens == 0


class _ScoringPolicy:
    """A minimal model policy: it scores the options on a real session and answers the best."""

    name = "scoring"

    def __init__(self, model):
        self.session = ModelSession(model)

    def decide(self, context: Context, tools):
        scores = self.session.score_continuations([{"role": "user", "content": "Pick A, B or C."}], None, CANDIDATES)
        best = max(range(len(scores)), key=lambda i: scores[i][0])
        return FinalAnswer(text="ABC"[best], usage=self.session.last_usage)


def test_trace_viewer_otel_and_cli_name_scored_tokens(tiny, tmp_path, capsys, ledger):
    from mcr.cli import _print_steps, _console
    from mcr.traces.recorder import read_trace
    from mcr.traces.view import build_payload, load_events, MediaResolver

    with Agent(policy=_ScoringPolicy(tiny), tools=ToolRegistry(), workdir=tmp_path, verifier=Verifier()) as agent:
        _print_steps(_console(False), agent.stream(SAMPLE, "Which one?", thread_id="scored"))
    printed = capsys.readouterr().out
    trace = tmp_path / "traces" / "scored.jsonl"
    (call,) = [e for e in read_trace(trace) if e["type"] == "model_call"]
    usage = Usage.model_validate(call["usage"])
    _adds_up(usage)
    assert usage.scored_tokens > 0
    assert f"{usage.scored_tokens:,} scored" in printed and f"{usage.prefilled_tokens:,} prefilled" in printed

    payload = build_payload(load_events(trace), trace.name, MediaResolver(tmp_path))
    (viewed,) = payload.calls
    assert viewed.scored_tokens == usage.scored_tokens and viewed.prefilled_tokens <= viewed.prompt_tokens
    viewer_js = (Path(__file__).resolve().parents[2] / "traces" / "viewer" / "viewer.js").read_text()
    assert '["scored", c.scored_tokens || 0]' in viewer_js  # the chart draws them as their own bar

    otel = pytest.importorskip("mcr.traces.otel")
    memory_mod = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    memory = memory_mod.InMemorySpanExporter()
    otel.export_otel(trace, exporter=memory)
    (chat,) = [s for s in memory.get_finished_spans() if s.name.startswith("chat")]
    assert chat.attributes["mcr.usage.scored_tokens"] == usage.scored_tokens
    assert chat.attributes["mcr.usage.prefilled_tokens"] <= chat.attributes["gen_ai.usage.input_tokens"]
    ledger.case("model_output", "a policy that scores candidate replies", outcome="scored tokens reported apart; "
                "prefilled ≤ prompt in Usage, trace, viewer, OTel and the CLI")
