"""Short distillation that heals a lossy GQA -> M^2LA conversion.

Only the attention parameters of the converted model train (``q_proj``,
``kv_a_proj_with_mqa``, ``kv_b_proj``, ``o_proj``, latent norm if any); the
teacher is the original model and the loss is KL(teacher || student) over the
full vocabulary at every position. Keeping the MLPs/embeddings frozen keeps
the student's function close to the original everywhere the calibration text
does not reach, and makes a CPU run of minutes meaningful.

What decides the result (SmolLM2-135M at 2x compression, ``benchmarks/RESULTS.md``):

* **Fresh text, not more steps.** On 4,096 calibration tokens a longer run did
  *worse* on held-out text (+31% perplexity after 21 steps, +39% after 346):
  it memorises the windows. ``heal`` therefore walks a shuffled stream of
  non-overlapping windows and only repeats one after the whole stream has been
  seen; give it 10^5 tokens or more (:func:`mcr.model.m2la.calibration.corpus_ids`).
* **A schedule that fits the budget.** The learning rate warms up, then
  follows a cosine to ``min_lr_ratio`` over the budget, whichever of
  ``steps`` or ``max_seconds`` runs out first, so a wall-clock-limited run
  still ends on a small learning rate instead of being cut mid-stride.
* **Held-out early stopping.** With ``eval_ids``, the KL on held-out windows is
  measured every ``eval_every`` steps and the best attention weights are
  restored at the end.

A nearly exact conversion (e.g. only a QK-norm fold) needs a small learning
rate (~1e-4 or below): larger ones make held-out KL worse before better.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from mcr.model.m2la.attention import M2LAAttention
from torch import nn

__all__ = ["HealConfig", "HealReport", "attention_parameters", "heal", "held_out_kl"]


@dataclass
class HealConfig:
    """How long and how fast to heal.

    Args:
        steps: most optimiser steps (the schedule's horizon unless ``max_seconds`` ends first).
        lr: peak AdamW learning rate. The default, 5e-5, is what `mcr convert` uses too:
            on SmolLM2-135M at 2x compression it reached a lower held-out KL than
            1e-4, and 2e-4 made it worse than no healing (benchmarks/RESULTS.md).
        seq_len: tokens per window; ``batch_size`` windows per step.
        warmup_steps: linear warm-up from 0 to ``lr``.
        min_lr_ratio: the cosine ends at ``lr * min_lr_ratio``.
        max_seconds: wall-clock budget; the cosine is stretched over it (progress is the
            larger of steps/``steps`` and elapsed/``max_seconds``).
        eval_every: with ``eval_ids``, measure held-out KL every this many steps (and at the end).
        seed: order of the windows.
    """

    steps: int = 100
    lr: float = 5e-5
    seq_len: int = 256
    batch_size: int = 1
    warmup_steps: int = 10
    min_lr_ratio: float = 0.05
    max_seconds: float | None = None
    weight_decay: float = 0.0
    eval_every: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps <= 0 or self.seq_len < 2 or self.batch_size <= 0 or self.lr <= 0:
            raise ValueError(f"HealConfig: steps, batch_size, lr must be > 0 and seq_len >= 2; got {self}")


@dataclass
class HealReport:
    """What a heal run did. ``train_kl``: KL (nats/token) of each step before its update;
    ``eval_kl``: ``(step, held-out KL)`` pairs (step 0 = before training); ``best_step``:
    the step whose weights were kept (the last one without ``eval_ids``)."""

    train_kl: list[float] = field(default_factory=list)
    eval_kl: list[tuple[int, float]] = field(default_factory=list)
    best_step: int = 0
    seconds: float = 0.0
    tokens_seen: int = 0

    @property
    def steps(self) -> int:
        return len(self.train_kl)


def attention_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters of every M2LAAttention in ``model`` (the only ones healing trains)."""
    params = [p for m in model.modules() if isinstance(m, M2LAAttention) for p in m.parameters()]
    if not params:
        raise ValueError("heal: the model has no M2LAAttention layers; convert it first (mcr.model.m2la.convert)")
    return params


def _windows(ids: torch.Tensor, seq_len: int) -> torch.Tensor:
    """Non-overlapping windows ``(W, seq_len)`` of a token stream ``(1, N)`` (the tail is dropped)."""
    n = ids.shape[-1] // seq_len
    if n == 0:
        raise ValueError(f"heal: {ids.shape[-1]} tokens is less than one window of seq_len={seq_len}")
    return ids.reshape(-1)[: n * seq_len].view(n, seq_len)


def _kl(student_logits: torch.Tensor, teacher_logp: torch.Tensor) -> torch.Tensor:
    """Mean KL(teacher || student) per token over a batch ``(B, T, V)``."""
    s_logp = student_logits.float().log_softmax(-1)
    return F.kl_div(s_logp, teacher_logp, log_target=True, reduction="sum") / (s_logp.shape[0] * s_logp.shape[1])


@torch.no_grad()
def held_out_kl(student: nn.Module, teacher_logp: list[torch.Tensor], windows: torch.Tensor) -> float:
    """Mean KL(teacher || student) per token over ``windows`` ``(W, T)``, teacher log-probs precomputed."""
    total = sum(_kl(student(w[None]).logits, t).item() for w, t in zip(windows, teacher_logp))
    return total / len(teacher_logp)


def _lr_factor(cfg: HealConfig, step: int, elapsed: float) -> float:
    """Warm-up then cosine to ``min_lr_ratio`` over the step or time budget, whichever is nearer its end."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = step / cfg.steps
    if cfg.max_seconds:
        progress = max(progress, elapsed / cfg.max_seconds)
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cos


def heal(student: nn.Module, teacher: nn.Module, ids: torch.Tensor, cfg: HealConfig | None = None,
         eval_ids: torch.Tensor | None = None) -> HealReport:
    """Distil ``teacher`` into ``student``'s attention on windows of ``ids`` ``(1, N)``.

    Args:
        student: a converted model (has ``M2LAAttention`` layers); trained in place.
        teacher: the original model (frozen, only run forward).
        ids: training token stream; windows are shuffled and not repeated before
            the stream is exhausted.
        eval_ids: optional held-out stream (disjoint from ``ids``): the KL on it picks
            the weights kept at the end.
    """
    cfg = cfg or HealConfig()
    params = attention_parameters(student)
    trainable = {id(p) for p in params}
    saved = {n: p.requires_grad for n, p in student.named_parameters()}
    gen = torch.Generator().manual_seed(cfg.seed)
    train = _windows(ids, cfg.seq_len)  # (W, T)
    rep = HealReport()
    ev_w, ev_t = None, None
    if eval_ids is not None:
        ev_w = _windows(eval_ids, cfg.seq_len)
        with torch.no_grad():
            ev_t = [teacher(w[None]).logits.float().log_softmax(-1) for w in ev_w]
        rep.eval_kl.append((0, held_out_kl(student, ev_t, ev_w)))
    best: dict = {"kl": math.inf, "state": None}
    if rep.eval_kl:  # the converted weights themselves are the first candidate
        best["kl"], best["state"] = rep.eval_kl[0][1], [p.detach().clone() for p in params]

    def evaluate(step: int) -> None:
        kl = held_out_kl(student, ev_t, ev_w)
        rep.eval_kl.append((step, kl))
        if kl < best["kl"]:
            best["kl"], rep.best_step = kl, step
            best["state"] = [p.detach().clone() for p in params]

    for p in student.parameters():
        p.requires_grad_(id(p) in trainable)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    order = torch.randperm(len(train), generator=gen)
    pos = 0
    t0 = time.monotonic()
    try:
        for step in range(cfg.steps):
            elapsed = time.monotonic() - t0
            if cfg.max_seconds is not None and elapsed > cfg.max_seconds:
                break
            if pos + cfg.batch_size > len(order):  # a new pass over the stream
                order, pos = torch.randperm(len(train), generator=gen), 0
            x = train[order[pos : pos + cfg.batch_size]]  # (B, T)
            pos += cfg.batch_size
            for g in opt.param_groups:
                g["lr"] = cfg.lr * _lr_factor(cfg, step, elapsed)
            with torch.no_grad():
                t_logp = teacher(x).logits.float().log_softmax(-1)  # (B, T, V)
            student.train()
            loss = _kl(student(x).logits, t_logp)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            student.eval()
            rep.train_kl.append(loss.item())
            rep.tokens_seen += x.numel()
            if ev_w is not None and (step + 1) % cfg.eval_every == 0:
                evaluate(step + 1)
        if ev_w is not None and rep.eval_kl[-1][0] != rep.steps:  # step 0 is always evaluated
            evaluate(rep.steps)
        if ev_w is None:
            rep.best_step = rep.steps
        elif best["state"] is not None:
            with torch.no_grad():
                for p, b in zip(params, best["state"]):
                    p.copy_(b)
    finally:
        student.eval()
        for n, p in student.named_parameters():
            p.requires_grad_(saved[n])
        rep.seconds = time.monotonic() - t0
    return rep
