"""ModelSession benchmark: cross-turn cache reuse vs re-prefilling every turn, and saved video prefixes.

Figures (one JSON line each, side by side in one run so ratios are fair):

* ``episode``: a 10-turn episode on SmolLM2-135M-Instruct (CPU) over a >= 4K
  token prefix (a long transcript) with ~100-token deltas per turn. Each turn
  one session reuses its cache and another re-prefills from scratch (the two
  interleaved, turn by turn), each with one ``generate`` call (prefill, then
  decode a few tokens) as a policy makes it. Reports the wall-time ratio of
  the turns, of the prefills alone, the tokens each prefilled, and (untimed)
  the largest next-token logit difference between the two (exactness).
* ``ttft_text_prefix``: time to first token for a second question after a
  saved 4K-token prefix, loaded from disk, vs cold (SmolLM2).
* ``ttft_video_prefix``: the same on a tiny Qwen3-VL over a real video: cold
  decodes and encodes the video; warm renders from the saved media layout
  and loads the prefix cache, so the video is never decoded.

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_session.py``
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from mcr.context import Context, Instruction, Observation, Thought, ToolCall, ToolResult, VideoRef
from mcr.model.runtime.loader import load_model, load_smollm2
from mcr.model.runtime.session import ModelSession

ROOT = Path(__file__).resolve().parents[1]
TOOLS = [{"type": "function", "function": {"name": "transcribe", "description": "Transcribe a span.",
                                           "parameters": {"type": "object", "properties": {"start": {"type": "number"}}}}}]
WORDS = ("keeper lighthouse ships harbour cliff barley market bread coins farmer morning night storm "
         "beam boats sea field sun square stall people").split()


def emit(figure: str, **values) -> None:
    print(json.dumps({"figure": figure, **values}), flush=True)


def transcript(tokenizer, min_tokens: int) -> str:
    """Deterministic narration lines until the text has ``min_tokens`` tokens."""
    lines, i = [], 0
    while True:
        t = i * 2.5
        words = " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(9))
        lines.append(f"[{t:.1f}s-{t + 2.4:.1f}s] In shot {i} the narrator says: {words}.")
        i += 1
        if i % 20 == 0 and len(tokenizer("\n".join(lines))["input_ids"]) >= min_tokens:
            return "\n".join(lines)


def delta_entries(ctx: Context, turn: int, tokenizer, target: int) -> None:
    """Append a thought, a call and a result of about ``target`` tokens in all."""
    ctx.append(Thought(text=f"Turn {turn}: check the narration around {turn * 10} s."))
    call = ctx.append(ToolCall(tool="transcribe", arguments={"start": float(turn * 10)}))
    body, k = [], 0
    while len(tokenizer(" ".join(body))["input_ids"]) < target - 45:
        body.append(WORDS[(turn * 3 + k) % len(WORDS)])
        k += 1
    ctx.append(ToolResult(tool="transcribe", summary=" ".join(body), refs=(call.id,)))


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def bench_episode(smol, turns: int, prefix_tokens: int, delta_tokens: int, gen_tokens: int) -> None:
    tok = smol.tokenizer
    ctx = Context()
    ref = VideoRef(path="lighthouse.mp4")
    ctx.append(Instruction(text="How many ships does the keeper count at night?", video=ref))
    ctx.append(ToolResult(tool="transcribe", summary=transcript(tok, prefix_tokens)))
    reuse = ModelSession(smol, max_new_tokens=gen_tokens)
    fresh = ModelSession(smol, max_new_tokens=gen_tokens)
    reuse.generate(ctx.render(), TOOLS)  # the episode's first turn: both pay the prefix
    first = reuse.last_usage.prompt_tokens
    totals = {"reuse_s": 0.0, "full_s": 0.0, "reuse_prefill_s": 0.0, "full_prefill_s": 0.0,
              "reuse_prefilled": 0, "full_prefilled": 0}
    max_diff = 0.0
    for turn in range(1, turns + 1):
        delta_entries(ctx, turn, tok, delta_tokens)
        messages = ctx.render()
        gens = {}
        for name, session in (("reuse", reuse), ("full", fresh)):
            if name == "full":
                session.reset()
            gens[name] = session.generate(messages, TOOLS)  # one call per turn, as a policy makes it
            totals[f"{name}_s"] += gens[name].usage.latency_s
            totals[f"{name}_prefill_s"] += gens[name].usage.prefill_s
            totals[f"{name}_prefilled"] += gens[name].usage.prefilled_tokens
        assert gens["reuse"].token_ids == gens["full"].token_ids, "greedy outputs differ"
        if turn in (1, turns):  # exactness, untimed: next-token logits, reused vs fresh
            a = reuse.next_token_logits(messages, TOOLS)
            fresh.reset()
            max_diff = max(max_diff, (a - fresh.next_token_logits(messages, TOOLS)).abs().max().item())
    emit(
        "episode",
        model="SmolLM2-135M-Instruct", turns=turns, first_prompt_tokens=first,
        final_prompt_tokens=reuse.last_usage.prompt_tokens, gen_tokens_per_turn=gen_tokens,
        reuse_s=round(totals["reuse_s"], 2), full_s=round(totals["full_s"], 2),
        turn_speedup=round(totals["full_s"] / totals["reuse_s"], 2),
        prefill_speedup=round(totals["full_prefill_s"] / max(totals["reuse_prefill_s"], 1e-9), 2),
        tokens_prefilled_reuse=totals["reuse_prefilled"], tokens_prefilled_full=totals["full_prefilled"],
        max_abs_logit_diff=max_diff,
    )


def bench_text_prefix(smol, prefix_tokens: int, folder: Path) -> None:
    tok = smol.tokenizer
    base = Context()
    base.append(ToolResult(tool="transcribe", summary=transcript(tok, prefix_tokens)))

    def question(text: str) -> list:
        ctx = Context(list(base))
        ctx.append(Instruction(text=text))
        return ctx.render()

    saver = ModelSession(smol, prefix_dir=folder)
    saver.next_token_logits(question("How many ships?"), TOOLS)
    saver.save_prefix(upto=saver.message_ends()[1])  # system + transcript: shared by every question
    cold = ModelSession(smol)
    _, t_cold = timed(lambda: cold.next_token_logits(question("What does the farmer plant?"), TOOLS))
    warm = ModelSession(smol, prefix_dir=folder, use_saved_prefixes=True)
    _, t_warm = timed(lambda: warm.next_token_logits(question("What does the farmer plant?"), TOOLS))
    emit(
        "ttft_text_prefix", model="SmolLM2-135M-Instruct", prompt_tokens=warm.last_usage.prompt_tokens,
        loaded_tokens=warm.last_usage.prefix_loaded_tokens, cold_s=round(t_cold, 3), warm_s=round(t_warm, 3),
        speedup=round(t_cold / t_warm, 2),
    )


def bench_video_prefix(video: Path, folder: Path) -> None:
    from mcr.model.runtime.tiny import save_tiny_qwen3vl

    checkpoint = save_tiny_qwen3vl(folder / "tiny")
    ref = VideoRef(path=str(video), fps=2.0, min_pixels=128 * 128, max_pixels=256 * 256)

    def question(text: str) -> list:
        ctx = Context()
        ctx.append(Observation(text="the video", video=ref))
        ctx.append(Instruction(text=text))
        return ctx.render()

    saver = ModelSession(load_model(checkpoint, dtype="float32"), prefix_dir=folder / "prefixes")
    saver.next_token_logits(question("How many ships?"), TOOLS)
    saver.save_prefix()
    cold = ModelSession(load_model(checkpoint, dtype="float32"))
    _, t_cold = timed(lambda: cold.next_token_logits(question("What does the farmer plant?"), TOOLS))
    warm = ModelSession(load_model(checkpoint, dtype="float32"), prefix_dir=folder / "prefixes", use_saved_prefixes=True)
    _, t_warm = timed(lambda: warm.next_token_logits(question("What does the farmer plant?"), TOOLS))
    video_tokens = sum(len(item.token_ids) for _, item in warm.render(question("x"), TOOLS).media)
    emit(
        "ttft_video_prefix", model="tiny Qwen3-VL (random weights)", video=video.name, video_tokens=video_tokens,
        prompt_tokens=warm.last_usage.prompt_tokens, loaded_tokens=warm.last_usage.prefix_loaded_tokens,
        cold_s=round(t_cold, 3), warm_s=round(t_warm, 3), speedup=round(t_cold / t_warm, 2),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--prefix-tokens", type=int, default=4096)
    parser.add_argument("--delta-tokens", type=int, default=100)
    parser.add_argument("--gen-tokens", type=int, default=8)
    parser.add_argument("--video", type=Path, default=ROOT / "examples" / "media" / "sample.mp4")
    args = parser.parse_args()
    emit("machine", cpu=platform.processor() or platform.machine(), threads=torch.get_num_threads(),
         torch=torch.__version__)
    smol = load_smollm2()
    bench_episode(smol, args.turns, args.prefix_tokens, args.delta_tokens, args.gen_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        bench_text_prefix(smol, args.prefix_tokens, Path(tmp))
        if args.video.is_file():
            bench_video_prefix(args.video, Path(tmp))


if __name__ == "__main__":
    main()
