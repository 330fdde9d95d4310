"""``mcr convert``: GQA checkpoint -> M^2LA checkpoint, with a fidelity report.

Kept apart from :mod:`mcr.model.m2la.convert` (pure math) because it does I/O:
loading a HF folder (Llama family or Qwen3-VL) or a GGUF file, reading
calibration text, saving, and measuring perplexity / KL against the original
model. QK-norm models are folded first (``fold_qk_norm``, lossy; see
:mod:`mcr.model.m2la.convert`); heal the result with :mod:`mcr.model.m2la.heal`.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mcr.model.m2la.calibration import corpus_ids, split_ids
from mcr.model.m2la.convert import ConvertSpec, collect_input_moments, convert_gqa_to_m2la, fold_qk_norm, has_qk_norm
from mcr.model.m2la.heal import HealConfig, heal
from mcr.model.m2la.integrate import decoder_layers

__all__ = ["fidelity", "load_causal_lm", "main", "text_ids"]

HEAL_LR = HealConfig.lr  # one default, HealConfig's (its docstring says how it was chosen)


def _is_multimodal(config) -> bool:
    """Qwen3-VL style: a ``vision_config`` beside the text config."""
    return getattr(config, "vision_config", None) is not None


def load_causal_lm(path: str | Path, dtype: torch.dtype = torch.float32):
    """(model, tokenizer) from a HF folder or a ``.gguf`` file (dequantised), offline.

    A folder whose config has a ``vision_config`` (Qwen3-VL) loads with
    ``AutoModelForImageTextToText``: the whole model is kept (vision tower
    included) so the converted checkpoint is still the full multimodal model;
    text-only ``model(input_ids).logits`` works for calibration and fidelity.
    """
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForImageTextToText,
        AutoTokenizer,
    )

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{path}: no such model folder or .gguf file")
    kw = {"gguf_file": p.name} if p.suffix == ".gguf" else {}
    root = p.parent if p.suffix == ".gguf" else p
    tok = AutoTokenizer.from_pretrained(root, **kw)
    auto = AutoModelForImageTextToText if not kw and _is_multimodal(AutoConfig.from_pretrained(root)) \
        else AutoModelForCausalLM
    model = auto.from_pretrained(root, dtype=dtype, **kw).eval()
    if kw:  # GGUF: drop the quantizer so save_pretrained writes plain float weights
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    return model, tok


def text_ids(tok, paths: list[str | Path], n_tokens: int) -> torch.Tensor:
    """The first ``n_tokens`` tokens of the concatenated text files, ``(1, n)``."""
    text = "\n\n".join(Path(p).read_text(errors="replace") for p in paths)
    ids = tok(text, return_tensors="pt").input_ids[:, :n_tokens]
    if ids.shape[1] < n_tokens:
        raise ValueError(f"calibration/eval text has {ids.shape[1]} tokens, {n_tokens} requested")
    return ids


@torch.no_grad()
def fidelity(model: nn.Module, ref_logits: list[torch.Tensor] | None, ids: torch.Tensor, window: int = 512,
             make_cache: Callable[[], Any] | None = None):
    """Perplexity of ``model`` on ``ids`` (non-overlapping windows) and mean KL(ref || model) per token.

    ``make_cache`` (e.g. ``lambda: LatentCache(quantize_8bit=True)``) runs each window through a
    fresh cache, so attention reads what the cache stores — the way to measure 8-bit storage.
    Returns ``(ppl, kl, logits)``; pass ``logits`` of the original model back as ``ref_logits``.
    """
    nll, n, kl, logits = 0.0, 0, 0.0, []
    for i, s in enumerate(range(0, ids.shape[1] - 1, window)):
        x = ids[:, s : s + window]
        kw = {"cache": make_cache(), "use_cache": True} if make_cache else {}
        out = model(x, **kw).logits.float()  # (1, T, V)
        logits.append(out)
        lp = out[:, :-1].log_softmax(-1)
        nll += -lp.gather(-1, x[:, 1:, None]).sum().item()
        n += x.shape[1] - 1
        if ref_logits is not None:
            rl = ref_logits[i].log_softmax(-1)
            kl += F.kl_div(out.log_softmax(-1), rl, log_target=True, reduction="sum").item() / x.shape[1]
    nwin = len(logits)
    return math.exp(nll / n), (kl / nwin if ref_logits is not None else 0.0), logits


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mcr convert", description="Convert a GQA Llama-family or Qwen3-VL model to M^2LA.")
    p.add_argument("model", help="HF model folder or .gguf file")
    p.add_argument("--out", help="folder to save the converted model (omit to only report)")
    p.add_argument("--rope-dim", type=int, default=None, help="qk_rope_head_dim (default: lossless G*head_dim)")
    p.add_argument("--kv-lora-rank", type=int, default=None, help="latent width (default: lossless G*head_dim)")
    p.add_argument("--calib", nargs="+", default=[],
                   help="calibration text file(s) or folders of *.txt (default: Python's own reference text)")
    p.add_argument("--calib-tokens", type=int, default=4096,
                   help="calibration tokens read from --calib for the latent PCA (default: %(default)s)")
    p.add_argument("--rope-horizon", type=int, default=128,
                   help="distance scale (tokens) deciding which leftover rotary components lose rotation "
                        "(0: drop; default: %(default)s)")
    p.add_argument("--key-weight", type=float, default=10.0,
                   help="weight of attention-score error against output error in the latent PCA (default: %(default)s)")
    p.add_argument("--eval", nargs="*", default=None, help="held-out text file(s): report perplexity and KL")
    p.add_argument("--eval-tokens", type=int, default=1024,
                   help="tokens of the --eval text scored for perplexity and KL (default: %(default)s)")
    p.add_argument("--heal-seconds", type=float, default=0.0,
                   help="after converting, distil toward the original for this long (wall clock; 0: no healing; "
                        "default: %(default)s)")
    p.add_argument("--heal-lr", type=float, default=HEAL_LR,
                   help="learning rate of the healing distillation (default: %(default)s)")
    p.add_argument("--heal-tokens", type=int, default=None,
                   help="healing text: the --calib sources then Python's reference text, this many tokens "
                        "(default: all of it; the last 2,048 are held out to pick the best weights)")
    return p


def _fold_report(fold: dict) -> dict:
    """The JSON part of a :func:`~mcr.model.m2la.convert.fold_qk_norm` report: per-layer q/k relative errors."""
    return {"tokens": fold["tokens"], "q_rel_err": [round(e, 6) for e in fold["q_rel_err"]],
            "k_rel_err": [round(e, 6) for e in fold["k_rel_err"]],
            "max_rel_err": round(max(fold["q_rel_err"] + fold["k_rel_err"]), 6)}


def _save(model: nn.Module, tok, src: str | Path, out: str | Path) -> None:
    """Weights + config, and the tokenizer; for Qwen3-VL the whole processor (the loader needs it)."""
    model.save_pretrained(out)
    if _is_multimodal(model.config):
        from transformers import AutoProcessor

        AutoProcessor.from_pretrained(src).save_pretrained(out)
    else:
        tok.save_pretrained(out)


def _heal(student: nn.Module, teacher: nn.Module, tok, args: argparse.Namespace) -> dict:
    """Distil ``teacher`` into ``student``'s attention (:mod:`mcr.model.m2la.heal`); the report's part about it."""

    train, held = split_ids(corpus_ids(tok, args.heal_tokens, paths=args.calib), 2048)
    with torch.enable_grad():
        rep = heal(student, teacher, train, HealConfig(steps=10**9, lr=args.heal_lr, max_seconds=args.heal_seconds),
                   eval_ids=held)
    return {"steps": rep.steps, "seconds": round(rep.seconds, 1), "tokens_seen": rep.tokens_seen,
            "best_step": rep.best_step, "held_out_kl": [[s, round(k, 5)] for s, k in rep.eval_kl]}


def main(argv: list[str] | None = None) -> int:
    """Run the conversion; prints one JSON line with shapes, cache bytes/token and fidelity.

    QK-norm models (Qwen3, Qwen3-VL) are first linearised by ``fold_qk_norm`` on the
    calibration tokens (lossy): the report's ``qk_norm_fold`` gives its relative q/k
    error per layer and, with ``--eval``, ``kl_fold`` isolates its share of the KL.
    """
    args = _parser().parse_args(argv)
    with torch.no_grad():  # not set_grad_enabled(False): an in-process caller (tests, mcr.cli) keeps autograd
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """The body of :func:`main`: load, fold (QK-norm models), convert, heal, report, save."""
    model, tok = load_causal_lm(args.model)
    tc = model.config.get_text_config(decoder=True)
    gqa_vals = 2 * tc.num_key_value_heads * (getattr(tc, "head_dim", None) or tc.hidden_size // tc.num_attention_heads)
    ref = None
    if args.eval:
        eval_ids = text_ids(tok, args.eval, args.eval_tokens)
        ppl0, _, ref = fidelity(model, None, eval_ids)
    calib = corpus_ids(tok, args.calib_tokens, paths=args.calib)
    # keep the original as the KL reference and the healing teacher
    work = copy.deepcopy(model) if args.eval or args.heal_seconds > 0 else model
    rep: dict = {}
    if has_qk_norm(work):
        rep["qk_norm_fold"] = _fold_report(fold_qk_norm(work, calib))
        if args.eval:
            rep["kl_fold"] = fidelity(work, ref, eval_ids)[1]
    moments = collect_input_moments(work, calib)
    spec = ConvertSpec(qk_rope_head_dim=args.rope_dim, kv_lora_rank=args.kv_lora_rank,
                       rope_horizon=args.rope_horizon or None, key_weight=args.key_weight)
    m2 = convert_gqa_to_m2la(work, moments, spec)
    cfg = decoder_layers(m2)[0].self_attn.config
    rep |= {"kv_lora_rank": cfg.kv_lora_rank, "qk_rope_head_dim": cfg.qk_rope_head_dim,
            "cache_values_per_token_layer": cfg.cache_values_per_token(), "gqa_values_per_token_layer": gqa_vals,
            "compression": gqa_vals / cfg.cache_values_per_token()}
    if args.eval:
        ppl, kl, _ = fidelity(m2, ref, eval_ids)
        rep |= {"ppl_original": round(ppl0, 4), "ppl_m2la": round(ppl, 4), "kl": kl}
    if args.heal_seconds > 0:
        rep["heal"] = _heal(m2, model, tok, args)
        if args.eval:
            ppl, kl, _ = fidelity(m2, ref, eval_ids)
            rep |= {"ppl_m2la_healed": round(ppl, 4), "kl_healed": kl}
    if args.out:
        _save(m2, tok, args.model, args.out)
        rep["out"] = str(args.out)
    print(json.dumps(rep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
