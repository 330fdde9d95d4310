"""The decode engine: one thread that runs every forward pass, and batches the decoding requests.

Requests arrive as :class:`Job` s, each holding a pooled session (its slot,
chosen by prefix in :mod:`.pool`) and its rendered prompt. The engine thread
loops:

1. **cancel**: a job whose client went away leaves the batch now, and its
   slot is freed (the session keeps what it decoded, still a valid prefix);
2. **join**: while the batch has room, one waiting job is prefilled on its
   own session (reusing that session's cached prefix, as before), its first
   token chosen, and the session joins the :class:`DecodeBatch`;
3. **step**: one forward for every row of the batch; each row chooses its
   next token under its own settings (greedy or sampled, its grammar, its
   stop strings, its budget) and the finished rows leave.

So a request joins after its prefill and leaves when it finishes
(continuous batching), and a long prefill delays the others' next token by
its own length, no more. ``max_batch=1`` is the one-at-a-time server of
before: one request prefills and decodes while the rest wait.

Every token goes to the job's ``deliver`` callback as it is chosen (the
HTTP layer streams it or collects it); the last call carries the outcome.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from mcr.model.runtime.batch import BatchRow, DecodeBatch

__all__ = ["Engine", "Job", "TokenEvent", "Finished"]


@dataclass
class TokenEvent:
    """One chosen token (``logprob`` and ``top`` only when the request asked for logprobs)."""

    token_id: int
    logprob: float | None = None
    top: list[tuple[int, float]] | None = None


@dataclass
class Finished:
    """The end of a job: ``reason`` is eos | stop | length | cancelled | error."""

    reason: str
    token_ids: list[int]
    usage: Any = None
    error: BaseException | None = None


@dataclass(eq=False)
class Job:
    """One request for the engine.

    Args:
        slot: the pool slot whose session runs it (released when the job ends).
        prompt: the rendered prompt.
        budget: most tokens to generate.
        stops: stop strings (the text before the first one is the reply).
        temperature / top_p / seed: sampling (temperature 0 is greedy).
        constraint: a grammar logits processor (transformers style), or None.
        top_logprobs: None for no logprobs, else how many alternatives (0-20).
        deliver: called from the engine thread with each TokenEvent, then one Finished.
    """

    slot: Any
    prompt: Any
    budget: int
    deliver: Callable[[TokenEvent | Finished], None]
    stops: tuple[str, ...] = ()
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    constraint: Any = None
    top_logprobs: int | None = None
    out: list[int] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.perf_counter)
    generator: torch.Generator | None = None
    row: BatchRow | None = None
    usage: Any = None  # the prefill's, then completed at the end

    def cancel(self) -> None:
        """Ask the engine to stop this job at its next step (the client went away)."""
        self.cancelled.set()


class Engine:
    """Owns the model's forward passes; decodes up to ``max_batch`` jobs together.

    Args:
        loaded: the LoadedModel every pooled session runs.
        release: called with a job's slot when the job ends (the pool frees it).
        max_batch: most jobs decoding at once (1: one at a time).
    """

    def __init__(self, loaded: Any, release: Callable[[Any], None], max_batch: int = 4):
        self.loaded = loaded
        self.release = release
        self.max_batch = max_batch
        self.batch = DecodeBatch(loaded)
        self._waiting: deque[Job] = deque()
        self._jobs: list[Job] = []  # decoding, in batch row order
        self._cond = threading.Condition()
        self._stop = False
        self.steps = 0
        self._thread = threading.Thread(target=self._loop, name="mcr-serve-engine", daemon=True)
        self._thread.start()

    # -- API ------------------------------------------------------------------ #
    def submit(self, job: Job) -> None:
        with self._cond:
            self._waiting.append(job)
            self._cond.notify()

    def wake(self) -> None:
        """Look at cancellations now (a client went away)."""
        with self._cond:
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout=30)

    @property
    def decoding(self) -> int:
        return len(self._jobs)

    # -- the loop ------------------------------------------------------------- #
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stop and not self._waiting and not self._jobs:
                    self._cond.wait()
                if self._stop:
                    for job in list(self._waiting) + list(self._jobs):
                        self._finish(job, "cancelled")
                    return
                joining = self._waiting.popleft() if self._waiting and len(self._jobs) < self.max_batch else None
            try:
                for job in [j for j in self._jobs if j.cancelled.is_set()]:
                    self._finish(job, "cancelled")
                if joining is not None:
                    self._start(joining)
                if self._jobs:
                    self._step()
            except BaseException as exc:  # a failed step fails the jobs decoding, never the server
                self._fail_batch(exc)

    def _fail_batch(self, exc: BaseException) -> None:
        """End every decoding job with ``exc``; their sessions start empty (their caches are unknown)."""
        jobs, self._jobs = list(self._jobs), []
        self.batch = DecodeBatch(self.loaded)
        for job in jobs:
            job.row = None
            job.slot.session.reset()
            self._finish(job, "error", exc)

    def _start(self, job: Job) -> None:
        if job.cancelled.is_set():
            return self._finish(job, "cancelled", prefilled=False)
        session = job.slot.session
        try:
            logits = session.prefill(job.prompt)  # (V,): reuses the session's cached prefix
        except BaseException as exc:
            return self._finish(job, "error", exc, prefilled=False)
        job.usage = session.last_usage
        if job.temperature > 0:
            job.generator = torch.Generator().manual_seed(job.seed if job.seed is not None else
                                                          int(time.time_ns() % 2**31))
        reason = self._choose(job, logits)
        if reason:
            return self._finish(job, reason)
        try:
            job.row = self.batch.join(session)
        except BaseException as exc:
            return self._finish(job, "error", exc)
        self._jobs.append(job)

    def _step(self) -> None:
        by_row = {job.row: job for job in self._jobs}
        rows = list(self.batch.rows)
        logits = self.batch.step({row: by_row[row].out[-1] for row in rows})  # (B, V), in row order
        self.steps += 1
        for row, row_logits in zip(rows, logits):
            job = by_row[row]
            reason = "cancelled" if job.cancelled.is_set() else self._choose(job, row_logits)
            if reason:
                self._finish(job, reason)

    def _choose(self, job: Job, logits: torch.Tensor) -> str | None:
        """Pick ``job``'s next token from ``logits`` ``(V,)``, deliver it; the stop reason if it ends the job."""
        scores = logits.float()[None]  # (1, V)
        raw = scores
        if job.constraint is not None:
            scores = job.constraint(torch.tensor([job.out], dtype=torch.long), scores)
        token = _select(scores[0], job.temperature, job.top_p, job.generator)
        job.out.append(token)
        event = TokenEvent(token)
        if job.top_logprobs is not None:
            logp = torch.log_softmax(raw[0], dim=-1)  # the model's own distribution, before any constraint
            event.logprob = float(logp[token])
            if job.top_logprobs:
                values, ids = torch.topk(logp, job.top_logprobs)
                event.top = [(int(i), float(v)) for v, i in zip(values, ids)]
        job.deliver(event)
        session = job.slot.session
        if token in session.eos_ids:
            return "eos"
        if job.stops and any(s in session.tokenizer.decode(job.out[-16:]) for s in job.stops):
            return "stop"
        if len(job.out) >= job.budget:
            return "length"
        return None

    def _finish(self, job: Job, reason: str, error: BaseException | None = None, prefilled: bool = True) -> None:
        session = job.slot.session
        if job in self._jobs:
            self._jobs.remove(job)
        if job.row is not None:
            row, job.row = job.row, None
            try:
                self.batch.leave(row)  # the session gets its cache back, with what it decoded
            except BaseException as exc:
                session.reset()
                self._fail_batch(exc)
        usage = None
        if prefilled and job.usage is not None:
            usage = job.usage.model_copy(update={
                "generated_tokens": len(job.out), "latency_s": time.perf_counter() - job.started})
            session.last_usage = usage
        if error is not None:
            session.reset()  # what the cache holds after a failed forward is unknown
        self.release(job.slot)
        try:
            job.deliver(Finished(reason, list(job.out), usage, error))
        except Exception:  # noqa: BLE001 - a listener that is gone must not stop the decode loop for the others
            return


def _select(scores: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None) -> int:
    """Greedy at temperature 0, else nucleus sampling (what ``ModelSession._select`` does, per job)."""
    if temperature <= 0:
        return int(torch.argmax(scores))
    probs = torch.softmax(scores / temperature, dim=-1)  # (V,)
    if top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)
        cut = torch.cumsum(sorted_p, 0) - sorted_p > top_p
        sorted_p[cut] = 0
        probs = torch.zeros_like(probs).scatter(0, order, sorted_p)
    return int(torch.multinomial(probs / probs.sum(), 1, generator=generator))
