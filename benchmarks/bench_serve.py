"""`mcr serve` benchmarks: batched decode vs one at a time (``--mode batch``), and time to first token
for a continued conversation vs a fresh one (``--mode ttft``, the default).

``--mode batch``: the same server code twice over the same loaded model —
``--max-batch 1`` (one request prefills and decodes while the others wait:
the server as it was before batching) and ``--max-batch 8`` (continuous
batching: every running request decodes in one forward per step). For 1, 2,
4 and 8 concurrent streams, each stream sends ``--requests`` requests one
after another (a short distinct question, greedy, ``--tokens`` tokens); the
two servers alternate at each concurrency. Reported per server and
concurrency: aggregate decode throughput (completion tokens / wall time) and
p50/p95 request latency, then the ratios batched/one-at-a-time and p95 over
a lone request's latency on the same server.

``--mode ttft``: one run, side by side, over HTTP (the in-process server on a local port,
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
and ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_serve.py --mode batch [--tokens 32] [--requests 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

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


TOPICS = ["rivers", "bread", "winter", "trains", "owls", "copper", "tides", "maps", "bees", "glass", "clocks",
          "salt", "comets", "ferns", "bridges", "ink"]


def _round(server_url: str, model: str, streams: int, requests: int, tokens: int, offset: int) -> dict:
    """``streams`` clients at once, each sending ``requests`` requests in turn; latencies and throughput."""
    def client(k: int) -> list[tuple[float, int]]:
        out = []
        with httpx.Client(timeout=1200) as c:
            for j in range(requests):
                topic = TOPICS[(offset + k * requests + j) % len(TOPICS)]
                body = {"model": model, "max_tokens": tokens, "messages": [
                    {"role": "user", "content": f"Write a few sentences about {topic}, request {offset + k}-{j}."}]}
                t0 = time.perf_counter()
                r = c.post(f"{server_url}/v1/chat/completions", json=body)
                r.raise_for_status()
                out.append((time.perf_counter() - t0, r.json()["usage"]["completion_tokens"]))
        return out

    t0 = time.perf_counter()
    with ThreadPoolExecutor(streams) as ex:
        results = [x for per in ex.map(client, range(streams)) for x in per]
    wall = time.perf_counter() - t0
    lat = sorted(x for x, _ in results)
    return {"tokens_per_s": round(sum(n for _, n in results) / wall, 2), "p50_s": round(statistics.median(lat), 3),
            "p95_s": round(lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))], 3),
            "requests": len(results), "tokens": sum(n for _, n in results), "wall_s": round(wall, 2)}


def batch_mode(args: argparse.Namespace) -> None:
    from mcr.serving.app import create_app

    loaded, model = load_served_model("offline")
    servers = {}
    for name, max_batch in (("one_at_a_time", 1), ("batched", 8)):
        pool = SessionPool(loaded, sessions=8, max_running=max_batch, max_waiting=16)
        servers[name] = ServerThread(create_app(pool, model, default_max_tokens=args.tokens))
    urls = {name: server.__enter__() for name, server in servers.items()}
    try:
        for name, url in urls.items():  # warm both (first forward, tokenizer caches)
            _round(url, model, 1, 1, 4, 99)
        table: dict[str, dict[int, dict]] = {name: {} for name in urls}
        for streams in args.streams:
            for name, url in urls.items():  # alternate: the machine's load hits both alike
                table[name][streams] = _round(url, model, streams, args.requests, args.tokens, streams * 10)
                emit("serve_batch_round", server=name, streams=streams, **table[name][streams])
    finally:
        for server in servers.values():
            server.__exit__(None, None, None)
    # A lone request runs the same code on both servers: the faster of the two is the stricter reference.
    lone = min(table[name][min(args.streams)]["p50_s"] for name in table)
    for streams in args.streams:
        one, bat = table["one_at_a_time"][streams], table["batched"][streams]
        emit("serve_batch", model=model, streams=streams, tokens_per_request=args.tokens,
             one_at_a_time_tok_s=one["tokens_per_s"], batched_tok_s=bat["tokens_per_s"],
             throughput_ratio=round(bat["tokens_per_s"] / one["tokens_per_s"], 2),
             one_at_a_time_p50_s=one["p50_s"], one_at_a_time_p95_s=one["p95_s"],
             batched_p50_s=bat["p50_s"], batched_p95_s=bat["p95_s"],
             batched_p95_over_lone=round(bat["p95_s"] / lone, 2),
             machine=f"{platform.machine()}, {os.cpu_count()} cores, torch threads "
                     f"{__import__('torch').get_num_threads()}, load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["ttft", "batch"], default="ttft")
    parser.add_argument("--history", type=int, default=4096, help="ttft: tokens of conversation history (default 4096)")
    parser.add_argument("--reps", type=int, default=5, help="ttft: pairs")
    parser.add_argument("--tokens", type=int, default=32, help="batch: completion tokens per request (default 32)")
    parser.add_argument("--requests", type=int, default=2, help="batch: requests per stream (default 2)")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8], help="batch: concurrencies")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.mode == "batch":
        return batch_mode(args)

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
