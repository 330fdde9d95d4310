"""Short distillation that heals a lossy GQA -> M^2LA conversion.

Only the attention parameters of the converted model train (``q_proj``,
``kv_a_proj_with_mqa``, ``kv_b_proj``, ``o_proj``, latent norm if any); the
teacher is the original model and the loss is KL(teacher || student) over the
full vocabulary at every position. Keeping the MLPs/embeddings frozen keeps
the student's function close to the original everywhere the calibration text
does not reach, and makes a CPU run of minutes meaningful.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mcr.model.m2la import M2LAAttention

__all__ = ["HealConfig", "attention_parameters", "heal"]


@dataclass
class HealConfig:
    """Args: steps; lr (AdamW); seq_len of each window; max_seconds stops early (wall clock)."""

    steps: int = 100
    lr: float = 1e-4
    seq_len: int = 256
    max_seconds: float | None = None
    weight_decay: float = 0.0


def attention_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters of every M2LAAttention in ``model`` (the only ones healing trains)."""
    params = [p for m in model.modules() if isinstance(m, M2LAAttention) for p in m.parameters()]
    if not params:
        raise ValueError("heal: the model has no M2LAAttention layers; convert it first (mcr.model.convert)")
    return params


def heal(student: nn.Module, teacher: nn.Module, ids: torch.Tensor, cfg: HealConfig = HealConfig()) -> list[float]:
    """Distil ``teacher`` into ``student``'s attention on windows of ``ids`` ``(1, N)``.

    Returns the KL (nats/token) of each step, measured before that step's update.
    """
    params = attention_parameters(student)
    trainable = {id(p) for p in params}
    saved = {n: p.requires_grad for n, p in student.named_parameters()}
    for p in student.parameters():
        p.requires_grad_(id(p) in trainable)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    n_win = max(1, ids.shape[1] // cfg.seq_len)
    history: list[float] = []
    t0 = time.monotonic()
    student.train()
    try:
        for step in range(cfg.steps):
            s = (step % n_win) * cfg.seq_len
            x = ids[:, s : s + cfg.seq_len]
            with torch.no_grad():
                t_logp = teacher(x).logits.float().log_softmax(-1)  # (1, T, V)
            s_logp = student(x).logits.float().log_softmax(-1)
            loss = F.kl_div(s_logp, t_logp, log_target=True, reduction="sum") / x.shape[1]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            history.append(loss.item())
            if cfg.max_seconds is not None and time.monotonic() - t0 > cfg.max_seconds:
                break
    finally:
        student.eval()
        for n, p in student.named_parameters():
            p.requires_grad_(saved[n])
    return history
