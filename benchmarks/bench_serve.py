"""`mcr serve` benchmark: time to first token for a continued conversation vs a fresh one.

One run, side by side, over HTTP (the in-process server on a local port,
httpx as the client), SmolLM2-135M-Instruct on the CPU:

* ``continued``: a conversation with a ``--history``-token history (default
  4K: turns of Python's own reference text, offline) has just been answered;
  the client sends the same messages plus the reply and a new question. The
  server routes it to the session holding that conversation, which prefills
  only the delta.
* ``fresh``: another conversation of the same length that the server has
  never seen (a different opening line, so nothing but the template's first
  tokens is shared) — everything is prefilled.

Each request asks for one token (``max_tokens: 1``), so its wall time is the
time to first token as a client sees it (HTTP, rendering, routing, prefill,
one decode step). Reports medians of ``--reps`` pairs, interleaved, and the
ratio; ``cached_tokens`` of each reply shows what was reused.

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_serve.py [--history 4096] [--reps 5]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import httpx

from mcr.model.m2la.calibration import python_reference_texts
from mcr.serving.app import ServerThread, create_app, load_served_model
from mcr.serving.pool import SessionPool


def emit(figure: str, **values) -> None:
    print(json.dumps({"figure": figure, **values}), flush=True)


def history(tokenizer, n_tokens: int, opening: str) -> list[dict]:
    """System + user/assistant turns of reference text until the rendered chat has ``n_tokens``."""
    text = " ".join(python_reference_texts())
    words = text.split()
    messages = [{"role": "system", "content": f"{opening} You answer questions about the documents you are given."}]
    i = 0
    while True:
        chunk = " ".join(words[i:i + 180])
        i += 180
        messages.append({"role": "user", "content": f"Read this part of the manual:\n{chunk}"})
        messages.append({"role": "assistant", "content": "I have read it."})
        rendered = tokenizer.apply_chat_template(messages, tokenize=False)
        if len(tokenizer(rendered, add_special_tokens=False)["input_ids"]) >= n_tokens:
            return messages


def ttft(client: httpx.Client, url: str, model: str, messages: list[dict]) -> tuple[float, dict]:
    t0 = time.perf_counter()
    r = client.post(f"{url}/v1/chat/completions", json={"model": model, "messages": messages, "max_tokens": 1})
    elapsed = time.perf_counter() - t0
    r.raise_for_status()
    return elapsed, r.json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=4096, help="tokens of conversation history (default 4096)")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()

    loaded, model = load_served_model("offline")
    pool = SessionPool(loaded, sessions=2)
    question = {"role": "user", "content": "Which statement does the manual describe first? Answer in a few words."}
    cont_t, fresh_t, cont_cached, fresh_cached, prompt_tokens = [], [], [], [], []
    with ServerThread(create_app(pool, model)) as url, httpx.Client(timeout=600) as client:
        for rep in range(args.reps):
            # Continued: the history was just answered (this request warms its session, untimed) ...
            convo = history(loaded.tokenizer, args.history, f"Conversation {rep}.")
            _, first = ttft(client, url, model, convo)
            reply = {"role": "assistant", "content": first["choices"][0]["message"]["content"]}
            t, body = ttft(client, url, model, convo + [reply, question])
            cont_t.append(t)
            cont_cached.append(body["usage"]["prompt_tokens_details"]["cached_tokens"])
            prompt_tokens.append(body["usage"]["prompt_tokens"])
            # ... fresh: a conversation of the same length the server has never seen.
            other = history(loaded.tokenizer, args.history, f"Unrelated session {rep}, new user.")
            t, body = ttft(client, url, model, other + [reply, question])
            fresh_t.append(t)
            fresh_cached.append(body["usage"]["prompt_tokens_details"]["cached_tokens"])
    cont, fresh = statistics.median(cont_t), statistics.median(fresh_t)
    emit("serve_ttft", model=model, history_tokens=args.history, prompt_tokens=statistics.median(prompt_tokens),
         reps=args.reps, continued_s=round(cont, 3), fresh_s=round(fresh, 3), speedup=round(fresh / cont, 1),
         continued_cached_tokens=statistics.median(cont_cached), fresh_cached_tokens=statistics.median(fresh_cached),
         continued_all_s=[round(x, 3) for x in cont_t], fresh_all_s=[round(x, 3) for x in fresh_t],
         machine=f"{platform.machine()}, {os.cpu_count()} cores, torch threads {__import__('torch').get_num_threads()}")


if __name__ == "__main__":
    main()
