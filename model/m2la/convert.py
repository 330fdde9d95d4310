"""GQA -> M^2LA conversion from calibration statistics (no training).

Per layer, only the second moment ``E[x x^T]`` of the attention input ``x``
(augmented with a constant 1 for biases) is collected; every projection below
is a closed-form function of it and the original weights.

1. **Shared RoPE key.** Write each rotary frequency pair ``i`` of a key head as
   a complex number; RoPE multiplies it by ``e^{j theta_i pos}``. Any *complex*
   linear map across the G KV heads commutes with that, so per frequency we
   take a query-weighted complex PCA across the heads. Each principal
   component becomes one pair of the shared RoPE key rotating at frequency
   ``i`` (frequencies may repeat); the query side gets the matching complex
   coefficients, folded into ``q_proj``. Components are chosen globally by
   the score energy they would otherwise lose.
2. **Leftover key components** whose rotation barely moves over the context
   (``theta_i * L`` small, L = ``rope_horizon``) keep their content in the no-position part — cost
   ``E|1 - e^{j theta Delta}|^2`` per unit energy — the others are dropped.
3. **Latent.** ``[k_nope; v]`` of all KV heads is compressed by a PCA in the
   metric that matters: keys weighted by the query second moment (score
   error), values by ``o_proj`` (output error). ``kv_b_proj`` decodes it.

**Exact** when ``qk_rope_head_dim = G * head_dim`` (every component keeps its
rotation) and ``kv_lora_rank >= G * head_dim`` (then k_nope is 0 and V is
spanned); this is the lossless setting, same cache size as GQA, used to check
the construction to 1e-4. Smaller ranks trade accuracy for cache.

**QK-norm models (Qwen3, Qwen3-VL) — a lossy path.** Their keys are
``k = g * u / rms(u)`` with ``u = k_proj(x)`` per KV head: the per-token factor
``1/rms(u)`` makes them non-linear in ``x``, so the closed form above does not
apply and :func:`convert_gqa_to_m2la` refuses them. :func:`fold_qk_norm` first
replaces each norm by the linear map ``g * s * u`` (one least-squares constant
``s`` per head, folded into ``q_proj``/``k_proj``); the folded model is then
converted as usual, and at the "lossless" ranks the M^2LA model reproduces the
*folded* model exactly — but not the original. The loss cannot be avoided in
this architecture: the per-token scale belongs to each KV head separately, while
M^2LA caches one latent and one RoPE key shared by all heads, read through fixed
linear maps, so no per-head, per-token factor can be stored or reapplied. The
fold reports its relative q/k error on the calibration tokens; a short
distillation against the original model recovers fidelity::

    report = fold_qk_norm(student, calib_ids)              # student: a copy of the original
    student = convert_gqa_to_m2la(student, collect_input_moments(student, calib_ids), spec)
    heal(student, original, train_ids, HealConfig(...))   # mcr.model.m2la.heal
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from mcr.model.m2la.attention import M2LAConfig
from mcr.model.m2la.integrate import decoder_layers, patch_attention, text_rotary

__all__ = ["ConvertSpec", "collect_input_moments", "convert_gqa_to_m2la", "convert_main", "fold_qk_norm",
           "has_qk_norm"]


@dataclass
class ConvertSpec:
    """What to build. ``None`` ranks mean the lossless setting (``G * head_dim``).

    Args:
        qk_rope_head_dim: width of the shared RoPE key (even).
        kv_lora_rank: latent width.
        rope_horizon: query-key distance scale L (tokens) over which a leftover
            rotary component's rotation is judged: components that turn little
            within L keep their content without rotation, the others are
            dropped; ``None`` drops them all. On SmolLM2 (same cache size,
            64-d RoPE key) L=128 gave +4.0% perplexity, 32: +7.6%, 2048: +22%.
        distance: assumed distance distribution on [0, L], "uniform" or "log".
        rank_allocation: "uniform" (every layer ``kv_lora_rank``) or "global": the
            same total latent width, spread over layers by their PCA spectra
            (each layer's spectrum is in its own normalised metric), at least
            ``min_rank`` per layer; recorded as ``kv_lora_rank_list``.
        key_weight: relative weight of score error vs output error in the latent PCA
            (each part first normalised to unit energy). Score errors pass through
            the softmax exponential, so keys deserve more: on SmolLM2 at 2x
            compression kw=10 gave +46% perplexity, 1: +95%, 0.1: +286%, 100: +68%.
        ridge: relative ridge on ``E[x x^T]`` so unseen directions still count.
    """

    qk_rope_head_dim: int | None = None
    kv_lora_rank: int | None = None
    rope_horizon: int | None = 128
    key_weight: float = 10.0
    ridge: float = 1e-6
    distance: str = "uniform"
    rank_allocation: str = "uniform"
    min_rank: int = 8


@torch.no_grad()
def collect_input_moments(model: nn.Module, input_ids: torch.Tensor, chunk: int = 512) -> list[torch.Tensor]:
    """``E[[x;1][x;1]^T]`` (float64) of every decoder layer's attention input over ``input_ids`` (B, T)."""
    layers = decoder_layers(model)
    acc: list[torch.Tensor | None] = [None] * len(layers)
    count = [0]

    def hook(i):
        def pre(mod, args, kwargs):
            x = (kwargs.get("hidden_states") if "hidden_states" in kwargs else args[0]).double()
            x = torch.cat((x.reshape(-1, x.shape[-1]), x.new_ones(x.shape[0] * x.shape[1], 1)), -1)  # (N, h+1)
            acc[i] = x.T @ x if acc[i] is None else acc[i] + x.T @ x
        return pre

    handles = [layer.self_attn.register_forward_pre_hook(hook(i), with_kwargs=True) for i, layer in enumerate(layers)]
    try:
        for s in range(0, input_ids.shape[1], chunk):
            ids = input_ids[:, s : s + chunk]
            count[0] += ids.numel()
            model(ids)
    finally:
        for h in handles:
            h.remove()
    return [a / count[0] for a in acc]


_QK_NORMS = ("q_norm", "k_norm")


def _live_qk_norms(attn: nn.Module) -> list[str]:
    """Names of ``attn``'s QK-norms that still normalise (absent or ``nn.Identity`` ones are linear)."""
    return [n for n in _QK_NORMS if not isinstance(getattr(attn, n, None), (nn.Identity, type(None)))]


def has_qk_norm(model: nn.Module) -> bool:
    """Whether any text decoder layer still applies a QK-norm (then :func:`fold_qk_norm` must run first)."""
    return any(_live_qk_norms(layer.self_attn) for layer in decoder_layers(model))


class _NormStats:
    """Per-head sums over calibration tokens for fitting ``y ~ s * (g * u)`` (float64, shape (heads,)).

    ``a = sum ||g u||^2``, ``b = sum <y, g u>``, ``c = sum ||y||^2`` where ``u`` is the
    norm's input and ``y`` its actual output (whatever its epsilon or dtype handling).
    """

    def __init__(self, gain: torch.Tensor) -> None:
        self.gain = gain.detach().double()  # (d,)
        self.a = self.b = self.c = 0.0

    def hook(self, mod, args, out) -> None:
        u = args[0].double()  # (B, T, heads, d) per-head norm (Qwen3), or (B, T, d): one "head"
        u = u.reshape(-1, u.shape[-2] if u.dim() == 4 else 1, u.shape[-1])  # (N, heads, d)
        y = out.double().reshape(u.shape)  # (N, heads, d)
        gu = u * self.gain  # (N, heads, d)
        self.a = self.a + gu.pow(2).sum((0, 2))  # (heads,)
        self.b = self.b + (y * gu).sum((0, 2))
        self.c = self.c + y.pow(2).sum((0, 2))

    def scale(self) -> torch.Tensor:
        """Least-squares ``s`` per head: ``argmin_s sum_t ||y_t - s g u_t||^2 = b / a``."""
        return self.b / self.a.clamp_min(1e-300)  # (heads,)

    def rel_err(self) -> float:
        """``sqrt(sum ||y - s g u||^2 / sum ||y||^2)`` over heads and tokens (residual ``c - b^2/a``)."""
        res = (self.c - self.b ** 2 / self.a.clamp_min(1e-300)).clamp_min(0)  # (heads,)
        return math.sqrt(res.sum().item() / max(self.c.sum().item(), 1e-300))


def _fold_into(lin: nn.Linear, factor: torch.Tensor) -> None:
    """Scale ``lin``'s output rows by ``factor`` (heads, d): ``lin(x)`` becomes ``factor * lin(x)`` per head."""
    f = factor.reshape(-1).to(lin.weight.dtype)  # (heads*d,)
    lin.weight.mul_(f[:, None])
    if lin.bias is not None:
        lin.bias.mul_(f)


@torch.no_grad()
def fold_qk_norm(model: nn.Module, input_ids: torch.Tensor, chunk: int = 512) -> dict:
    """Make a QK-norm model (Qwen3, Qwen3-VL) linear in ``x``, in place: the lossy step before conversion.

    Each ``RMSNorm(u) = g * u / rms(u)`` (``u``: one head's ``q_proj``/``k_proj`` output)
    becomes ``g * s * u``, folded into the projection's weight and bias; the norm
    becomes ``nn.Identity()``. ``s`` is one constant per head minimising, over the
    calibration tokens, ``sum_t ||y_t - s g u_t||^2`` with ``y_t`` the true normalised
    vector: ``s = sum <y, g u> / sum ||g u||^2`` (= ``E[||g u||^2 / rms] / E[||g u||^2]``
    when ``y = g u / rms`` exactly, i.e. ignoring the norm's epsilon).

    Why this target: with ``q = g u/r`` normalised (``r = rms(u)``), a linearised
    score is ``(s_q r_q)(s_k r_k) q.k`` (RoPE rotates, it does not rescale), so its
    error is ``q.k (s_q s_k r_q r_k - 1)``: only the product ``s_q s_k`` matters. If
    ``(q.k)^2`` does not depend on the rms values and query and key tokens are
    independent, the score least squares gives ``s_q s_k = E[r_q]/E[r_q^2] *
    E[r_k]/E[r_k^2]``, the product of the two per-side fits above when ``||y||`` is
    about constant (``||u / rms(u)|| = sqrt(d)``; ``g`` reweights channels only). So
    fitting q and k separately loses little, needs only per-head sums (no pairs of
    tokens), and one scalar per head is robust with few calibration tokens.

    All layers are fitted in one pass on the *original* model's activations (later
    layers then see slightly different inputs once earlier ones are folded); the
    errors below are measured on those same activations.

    Args:
        model: HF model whose text decoder layers' ``self_attn`` has ``q_norm``/``k_norm``
            with a ``weight`` gain (Qwen3 convention ``w * u / rms(u)``).
        input_ids: calibration tokens ``(B, T)``, run in windows of ``chunk``.
    Returns:
        ``{"tokens": N, "q_rel_err": [per layer], "k_rel_err": [...], "q_scale": [[per head]],
        "k_scale": [[...]]}``; ``*_rel_err`` is ``sqrt(sum ||y - y_fold||^2 / sum ||y||^2)``
        over the layer's heads and the calibration tokens: how far the linearised q/k are
        from the normalised ones. Layers without a live norm report 0 and scale 1.
    """
    layers = decoder_layers(model)
    stats, n = _norm_stats(model, input_ids, chunk)
    rep: dict = {"tokens": n, "q_rel_err": [], "k_rel_err": [], "q_scale": [], "k_scale": []}
    for i, layer in enumerate(layers):
        attn = layer.self_attn
        for name, proj in (("q_norm", attn.q_proj), ("k_norm", attn.k_proj)):
            side, st = name[0], stats.get((i, name))
            if st is None:  # already linear
                rep[f"{side}_rel_err"].append(0.0)
                rep[f"{side}_scale"].append([1.0])
                continue
            sc = st.scale()  # (heads,)
            _fold_into(proj, sc[:, None] * st.gain)  # (heads, d)
            setattr(attn, name, nn.Identity())
            rep[f"{side}_rel_err"].append(st.rel_err())
            rep[f"{side}_scale"].append(sc.tolist())
    return rep


def _norm_stats(model: nn.Module, input_ids: torch.Tensor, chunk: int) -> tuple[dict, int]:
    """One forward pass over ``input_ids`` with a hook on every live QK-norm.

    Returns ``({(layer, "q_norm" | "k_norm"): _NormStats}, tokens)``.
    """
    stats: dict[tuple[int, str], _NormStats] = {}
    handles = []
    for i, layer in enumerate(decoder_layers(model)):
        for name in _live_qk_norms(layer.self_attn):
            norm = getattr(layer.self_attn, name)
            if getattr(norm, "weight", None) is None:
                raise ValueError(f"layer {i} {name}: {type(norm).__name__} has no `weight` gain to fold")
            stats[i, name] = _NormStats(norm.weight)
            handles.append(norm.register_forward_hook(stats[i, name].hook))
    if not stats:
        raise ValueError(f"{type(model).__name__}: no live q_norm/k_norm to fold")
    n = 0
    try:
        for s in range(0, input_ids.shape[1], chunk):
            ids = input_ids[:, s : s + chunk]
            n += ids.numel()
            model(ids)
    finally:
        for h in handles:
            h.remove()
    missed = [k for k, st in stats.items() if isinstance(st.a, float)]
    if missed:
        raise ValueError(f"QK-norms never ran on the calibration ids: {missed[:4]}")
    return stats, n


def _rotation_cost(inv_freq: torch.Tensor, L: int | None, distance: str) -> torch.Tensor:
    """Score energy lost per unit, ``E_Delta |1 - e^{j theta Delta}|^2``, if a component loses its rotation.

    ``distance``: ``"uniform"`` on [0, L], or ``"log"`` (log-uniform on [1, L]:
    attention mass concentrates on near tokens). Capped at 1: dropping the
    component instead costs exactly 1.
    """
    if not L:
        return torch.ones_like(inv_freq)
    if distance == "uniform":
        d = torch.linspace(0, L, 513, dtype=torch.float64)
    elif distance == "log":
        d = torch.logspace(0, math.log10(L), 513, dtype=torch.float64)
    else:
        raise ValueError(f"distance must be 'uniform' or 'log', got {distance!r}")
    return (2 - 2 * torch.cos(inv_freq[:, None] * d).mean(1)).clamp(max=1.0)


def _psd_sqrt(a: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric square root and inverse square root of a PSD matrix (ridge ``eps`` * mean eig)."""
    lam, u = torch.linalg.eigh(a)
    lam = lam.clamp_min(0) + eps * lam.clamp_min(0).mean() + 1e-30
    return (u * lam.sqrt()) @ u.T, (u / lam.sqrt()) @ u.T


def _layer_weights(attn: nn.Module) -> tuple[torch.Tensor, ...]:
    """(Wq~, Wk~, Wv~) with the bias as last column, and Wo, all float64."""
    def aug(lin):
        b = lin.bias if lin.bias is not None else torch.zeros(lin.out_features, device=lin.weight.device)
        return torch.cat((lin.weight, b[:, None]), 1).double()
    return aug(attn.q_proj), aug(attn.k_proj), aug(attn.v_proj), attn.o_proj.weight.double()


def _convert_layer(attn, sigma, inv_freq, n_heads, n_kv, hd, dr, r, spec):
    """Closed-form M^2LA weights for one GQA layer. Returns (state dict, freq index list)."""
    wq, wk, wv, wo = _layer_weights(attn)
    F, G, grp = hd // 2, n_kv, n_heads // n_kv
    sigma = sigma + spec.ridge * torch.diagonal(sigma).mean() * torch.eye(sigma.shape[0], dtype=sigma.dtype)
    qc = wq.view(n_heads, hd, -1)[:, :F] + 1j * wq.view(n_heads, hd, -1)[:, F:]  # (H, F, h+1)
    kc = wk.view(G, hd, -1)[:, :F] + 1j * wk.view(G, hd, -1)[:, F:]  # (G, F, h+1)
    sig_c = sigma.to(torch.complex128)
    # query energy per (group, frequency): E|q_{h,i}|^2 summed over the group's heads
    qe = torch.einsum("hfa,ab,hfb->hf", qc, sig_c, qc.conj()).real.view(G, grp, F).sum(1).clamp_min(1e-12)  # (G, F)
    cov = torch.einsum("gfa,ab,kfb->fgk", kc, sig_c, kc.conj())  # (F, G, G) key covariance per frequency
    sw = qe.T.sqrt()  # (F, G)
    lam, u = torch.linalg.eigh(sw[:, :, None] * cov * sw[:, None, :])  # (F, G), (F, G, G)
    lam = lam.clamp_min(0)
    eps = _rotation_cost(inv_freq.double(), spec.rope_horizon, spec.distance)  # (F,)
    cost = (lam * eps[:, None]).flatten()  # (F*G,) score energy lost if not in the RoPE key
    order = torch.argsort(cost, descending=True)
    chosen = torch.zeros(F * G, dtype=torch.bool)
    chosen[order[: dr // 2]] = True
    chosen = chosen.view(F, G)
    # per component (i, j): key coefficients b = u^H W^{1/2} (G,), query-side a = W^{-1/2} u (G,)
    b = u.conj().transpose(1, 2) * sw[:, None, :]  # (F, J, G)
    a = u / sw[:, :, None]  # (F, G, J)
    fi, ji = chosen.nonzero(as_tuple=True)  # selected components, sorted by frequency
    # shared rope key pairs: c = sum_g b_g k_g  (complex)
    rope_k = torch.einsum("pg,gpa->pa", b[fi, ji], kc[:, fi])  # (P, h+1) complex
    # rope query for head h: conj(a_{g(h)}) * q_h at that frequency
    gh = torch.arange(n_heads) // grp
    rope_q = a[fi, :, ji].T[gh].conj()[..., None] * qc[:, fi]  # (H, P, h+1) complex
    # no-position key: leftover components that (nearly) do not rotate over the context
    keep_nope = (~chosen) & (eps[:, None] < 1.0) & (lam > 0)
    p_nope = torch.einsum("fgj,fj,fjk->fgk", a, keep_nope.to(a.dtype), b)  # (F, G, G) complex projector
    kn = torch.einsum("fgk,kfa->gfa", p_nope, kc)  # (G, F, h+1) complex
    k_nope = torch.cat((kn.real, kn.imag), 1).reshape(G * hd, -1)  # (G*hd, h+1) half-split layout
    # latent PCA of [k_nope; v] in the score/output metric
    wq_r = wq.view(n_heads, hd, -1)
    a_g = torch.einsum("hda,ab,heb->hde", wq_r, sigma, wq_r).view(G, grp, hd, hd).sum(1)  # (G, hd, hd)
    wo_h = wo.view(wo.shape[0], n_heads, hd).permute(1, 0, 2)  # (H, hidden, hd)
    b_g = torch.einsum("hod,hoe->hde", wo_h, wo_h).view(G, grp, hd, hd).sum(1)  # (G, hd, hd)
    sk = [_psd_sqrt(m, 1e-6) for m in a_g]
    sv = [_psd_sqrt(m, 1e-6) for m in b_g]
    fk = torch.block_diag(*[s for s, _ in sk]) @ k_nope  # (G*hd, h+1)
    fv = torch.block_diag(*[s for s, _ in sv]) @ wv  # (G*hd, h+1)
    ek, ev = torch.trace(fk @ sigma @ fk.T), torch.trace(fv @ sigma @ fv.T)
    ak = math.sqrt(spec.key_weight / ek) if ek > 1e-12 * ev else 1.0
    av = 1.0 / math.sqrt(ev)
    fz = torch.cat((ak * fk, av * fv), 0)  # (2*G*hd, h+1)
    lam_l, ul = torch.linalg.eigh(fz @ sigma @ fz.T)
    if r is None:  # first pass of a global rank allocation: only the latent spectrum
        return lam_l.flip(0).clamp_min(0), None
    ul = ul.flip(-1)[:, :r]  # (2*G*hd, r) top components
    lat = ul.T @ fz  # (r, h+1) latent = ul^T S [k_nope; v]
    dec_k = torch.block_diag(*[si for _, si in sk]) @ ul[: G * hd] / ak  # (G*hd, r)
    dec_v = torch.block_diag(*[si for _, si in sv]) @ ul[G * hd :] / av  # (G*hd, r)
    # assemble (rope pairs interleaved: re, im)
    P = fi.numel()
    rk = torch.stack((rope_k.real, rope_k.imag), 1).reshape(2 * P, -1)  # (dr, h+1)
    rq = torch.stack((rope_q.real, rope_q.imag), 2).reshape(n_heads, 2 * P, -1)  # (H, dr, h+1)
    q_new = torch.cat((wq_r, rq), 1).reshape(n_heads * (hd + 2 * P), -1)  # (H*(hd+dr), h+1)
    kv_a = torch.cat((lat, rk), 0)  # (r + dr, h+1)
    kv_b = torch.cat((dec_k.view(G, hd, r)[gh], dec_v.view(G, hd, r)[gh]), 1).reshape(-1, r)  # (H*2hd, r)
    sd = {"q_proj.weight": q_new[:, :-1], "q_proj.bias": q_new[:, -1], "kv_a_proj_with_mqa.weight": kv_a[:, :-1],
          "kv_a_proj_with_mqa.bias": kv_a[:, -1], "kv_b_proj.weight": kv_b, "o_proj.weight": wo}
    if attn.o_proj.bias is not None:
        sd["o_proj.bias"] = attn.o_proj.bias.double()
    return sd, fi.tolist()


def _allocate_ranks(spectra: list[torch.Tensor], r: int, min_rank: int) -> list[int]:
    """Per-layer latent widths summing to ``len(spectra) * r``: the largest eigenvalues across layers."""
    n = len(spectra)
    ranks = [min(min_rank, len(s)) for s in spectra]
    pool = torch.cat([s[k:] for s, k in zip(spectra, ranks)])
    owner = torch.cat([torch.full((len(s) - k,), i) for i, (s, k) in enumerate(zip(spectra, ranks))])
    extra = max(0, n * r - sum(ranks))
    for i in owner[torch.argsort(pool, descending=True)[:extra]].tolist():
        ranks[i] += 1
    return ranks


@torch.no_grad()
def convert_gqa_to_m2la(model: nn.Module, moments: list[torch.Tensor], spec: ConvertSpec) -> nn.Module:
    """Turn a GQA model (Llama family; Qwen3-VL after :func:`fold_qk_norm`) into M^2LA in place; returns it.

    Args:
        model: HF causal LM (Llama family) or Qwen3-VL whose text decoder layers have q/k/v/o_proj
            and RoPE; QK-norms must be ``nn.Identity`` (see :func:`fold_qk_norm`) or absent.
        moments: output of :func:`collect_input_moments` (one per layer).
        spec: target shapes (``None`` = lossless).
    Raises:
        ValueError: QK-norm models not yet folded (:func:`fold_qk_norm`), odd head_dim, or a RoPE
            budget above ``G * head_dim``.
    """
    tc = model.config.get_text_config(decoder=True)
    layers = decoder_layers(model)
    live = [(i, n) for i, layer in enumerate(layers) for n in _live_qk_norms(layer.self_attn)]
    if live:
        raise ValueError(f"per-head QK-norm (Qwen3) makes q/k non-linear in x ({live[0][1]} of layer {live[0][0]}); "
                         "closed-form conversion does not apply — run mcr.model.m2la.convert.fold_qk_norm(model, "
                         "calib_ids) first (lossy; heal afterwards with mcr.model.m2la.heal)")
    n_heads, n_kv = tc.num_attention_heads, tc.num_key_value_heads
    hd = getattr(tc, "head_dim", None) or tc.hidden_size // n_heads
    dr = spec.qk_rope_head_dim if spec.qk_rope_head_dim is not None else n_kv * hd
    r = spec.kv_lora_rank if spec.kv_lora_rank is not None else n_kv * hd
    if dr % 2 or not 0 < dr <= n_kv * hd:
        raise ValueError(f"qk_rope_head_dim must be even and in (0, {n_kv * hd}] (G * head_dim), got {dr}")
    if not 0 < r <= 2 * n_kv * hd:
        raise ValueError(f"kv_lora_rank must be in (0, {2 * n_kv * hd}], got {r}")
    inv_freq = text_rotary(model).inv_freq.cpu()
    dt, dev = next(model.parameters()).dtype, next(model.parameters()).device
    args = [(layer.self_attn, moments[i].cpu(), inv_freq, n_heads, n_kv, hd, dr) for i, layer in enumerate(layers)]
    ranks = [r] * len(layers)
    if spec.rank_allocation == "global":
        ranks = _allocate_ranks([_convert_layer(*a, None, spec)[0] for a in args], r, spec.min_rank)
    elif spec.rank_allocation != "uniform":
        raise ValueError(f"rank_allocation must be 'uniform' or 'global', got {spec.rank_allocation!r}")
    sds, idx = [], []
    for a, ri in zip(args, ranks):
        sd, fi = _convert_layer(*a, ri, spec)
        sds.append(sd)
        idx.append(fi)
    scale = getattr(layers[0].self_attn, "scaling", hd ** -0.5)  # the host's score scale (head_dim^-0.5 here)
    bias = layers[0].self_attn.o_proj.bias is not None  # Qwen2: q/k/v biased, o not, whatever attention_bias says
    cfg = M2LAConfig(hidden_size=tc.hidden_size, num_attention_heads=n_heads, kv_lora_rank=r, qk_rope_head_dim=dr,
                     kv_lora_rank_list=ranks if len(set(ranks)) > 1 else None,
                     qk_nope_head_dim=hd, v_head_dim=hd, rope_interleave=True, rope_freq_index=idx,
                     softmax_scale=scale, q_bias=True, kv_a_bias=True, o_bias=bias,
                     num_hidden_layers=len(layers))
    patch_attention(model, cfg)
    for layer, sd in zip(layers, sds):
        layer.self_attn.load_state_dict({k: v.to(dt) for k, v in sd.items()}, strict=True)
    return model.to(dev)
