"""The lmms-eval adapter against lmms-eval's real base class and Instance (installed --no-deps).

Each request runs a real agent episode (graph, tools, verifier) on a truth-suite
video. The policy is scripted with one generic plan (count the shots, name that
number), not a plan per question; the offline model policy runs in the slow test.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

lmms_api = pytest.importorskip("lmms_eval.api.model", reason="lmms-eval is not installed: pip install --no-deps lmms-eval")
from lmms_eval.api.instance import GenerationResult, Instance, unwrap_generation_output  # noqa: E402

from mcr.eval.lmms_adapter import MODEL_ID, AdapterInputError, MCRAgent, NotSupportedError, manifest, split_context  # noqa: E402

SUITE = Path(__file__).resolve().parents[2] / "examples" / "suites" / "truth"
VIDEO = SUITE / "media" / "v1.mp4"  # three scenes (facts.json)
NUMBERS = "['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven']"
PROMPT = ("Select the best answer to the following multiple-choice question based on the video.\n"
          "How many scenes does the video have?\nA. two\nB. three\nC. four\nD. five\n"
          "Answer with the option's letter from the given choices directly.")


@pytest.fixture
def model(tmp_path) -> MCRAgent:
    plan = tmp_path / "plan.yaml"
    plan.write_text(textwrap.dedent(f"""\
        policy:
          name: scripted
          plan:
            - call: segment
              args: {{mode: temporal}}
            - answer: "{{{{ {NUMBERS}[results.segment.shots | length] }}}} scenes"
              option: "{{{{ choose({NUMBERS}[results.segment.shots | length]) }}}}"
              evidence: [segment]
        """))
    # The way lmms-eval builds a model from --model_args (its own parser).
    lm = MCRAgent.create_from_arg_string(f"policy=scripted,plan={plan},tools=segment,workdir={tmp_path / 'w'}",
                                         {"batch_size": 1, "device": "cpu"})
    lm.task_dict = {"videomme": {"test": {0: {"video": str(VIDEO), "question_id": "v1-1"}}}}
    return lm


def _request(args: tuple, kind: str = "generate_until") -> Instance:
    return Instance(request_type=kind, arguments=args, idx=0, metadata={"task": "videomme", "doc_id": 0, "repeats": 1})


def test_is_an_lmms_model_and_registers_by_entry_point():
    assert issubclass(MCRAgent, lmms_api.lmms) and MCRAgent.is_simple
    from lmms_eval.models.registry_v2 import ModelRegistryV2

    registry = ModelRegistryV2()
    registry.register_manifest(manifest())
    assert registry.get_model_class(MODEL_ID) is MCRAgent
    from importlib.metadata import entry_points

    assert "mcr_agent" in {e.name for e in entry_points(group="lmms_eval.models")}  # pyproject's entry point


def test_generate_until_runs_an_episode_and_answers_with_the_letter(model):
    request = _request((PROMPT, {"max_new_tokens": 16}, lambda doc: [doc["video"]], 0, "videomme", "test"))
    (output,) = model.generate_until([request])
    assert isinstance(output, GenerationResult)
    text, counts = unwrap_generation_output(output)
    assert text == "B"  # three shots found by the real segment tool → option "three"
    assert counts.input_tokens == 0 and counts.output_tokens == 0  # a scripted policy calls no model
    (episode,) = model.episodes
    assert episode["stop_reason"] == "answered" and Path(episode["trace"]).is_file()


def test_chat_shaped_requests_give_the_video_in_messages(model):
    def doc_to_messages(doc):
        return [{"role": "user", "content": [{"type": "video", "url": doc["video"]}, {"type": "text", "text": PROMPT}]}]

    (output,) = model.generate_until([_request((PROMPT, doc_to_messages, {}, 0, "videomme", "test"))])
    assert output.text == "B"


def test_multi_round_follows_doc_to_text_until_terminal(model):
    seen = []

    def doc_to_text(doc, previous_output, round_idx, previous_round_info):
        seen.append((round_idx, list(previous_output), previous_round_info))
        if round_idx == 1:  # round two: the same video, another wording
            return [doc["video"]], PROMPT.replace("How many scenes", "Count the scenes: how many"), False, None, {"r": 1}
        return None, None, True, None, {"r": 2}

    request = _request((PROMPT, {}, lambda doc: [doc["video"]], doc_to_text, 0, "videomme", "test"), "generate_until_multi_round")
    assert model.generate_until_multi_round([request]) == [["B", "B"]]
    assert seen == [(1, ["B"], None), (2, ["B", "B"], {"r": 1})]


def test_what_an_agent_cannot_do_is_a_clear_error(model, tmp_path):
    with pytest.raises(NotSupportedError, match="no log-likelihoods"):
        model.loglikelihood([_request(("ctx", " cont"), "loglikelihood")])
    image_only = _request((PROMPT, {}, lambda doc: [object()], 0, "videomme", "test"))
    with pytest.raises(AdapterInputError, match="no video file among its visuals"):
        model.generate_until([image_only])
    with pytest.raises(AdapterInputError, match="unknown model_args for mcr_agent: temprature"):
        MCRAgent.create_from_arg_string("temprature=0")
    with pytest.raises(AdapterInputError, match="plan=FILE"):
        MCRAgent(policy="scripted")
    with pytest.raises(AdapterInputError, match="--batch_size 1"):
        MCRAgent(batch_size=4)


def test_split_context_keeps_instructions_and_reads_options():
    question, options = split_context(PROMPT)
    assert options == ["two", "three", "four", "five"]
    assert question.startswith("Select the best answer") and question.endswith("given choices directly.")
    assert "A. two" not in question
    assert split_context("What is shown?\n(A) a dog\n(B) a cat\nAnswer the question with the option letter")[1] == ["a dog", "a cat"]
    assert split_context("Describe the video.") == ("Describe the video.", None)


@pytest.mark.slow
def test_offline_model_policy_through_the_adapter(tmp_path):
    """The real offline default (SmolLM2) answers one request; its token counts reach lmms-eval."""
    lm = MCRAgent.create_from_arg_string(f"policy=offline,max_steps=6,workdir={tmp_path}", {"batch_size": 1})
    lm.task_dict = {"videomme": {"test": {0: {"video": str(VIDEO)}}}}
    (output,) = lm.generate_until([_request((PROMPT, {}, lambda doc: [doc["video"]], 0, "videomme", "test"))])
    assert output.text in {"A", "B", "C", "D", ""}
    assert output.token_counts.input_tokens > 0
