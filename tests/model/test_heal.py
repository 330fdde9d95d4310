"""Healing: shuffled non-repeating windows, a schedule that fits the budget, held-out early stopping;
and the offline calibration corpus."""

import copy

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from mcr.model.m2la.calibration import corpus_ids, python_reference_texts, split_ids
from mcr.model.m2la.convert import ConvertSpec, collect_input_moments, convert_gqa_to_m2la
from mcr.model.m2la.heal import HealConfig, _lr_factor, attention_parameters, heal, held_out_kl


def _pair(seed: int = 0):
    """(teacher, lossy M^2LA student) on a small random Llama."""
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=61, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                      rope_parameters={"rope_type": "default", "rope_theta": 100.0})
    teacher = LlamaForCausalLM(cfg).eval()
    for p in teacher.parameters():
        torch.nn.init.normal_(p, std=0.2)
    calib = torch.randint(0, 61, (1, 256), generator=torch.Generator().manual_seed(seed + 1))
    student = convert_gqa_to_m2la(copy.deepcopy(teacher), collect_input_moments(teacher, calib),
                                  ConvertSpec(qk_rope_head_dim=2, kv_lora_rank=3))
    return teacher, student


def _stream(n: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 61, (1, n), generator=torch.Generator().manual_seed(seed))


def test_every_window_is_seen_once_before_any_repeats():
    teacher, student = _pair()
    ids = _stream(10 * 16 + 7, 5)  # 10 windows of 16 and a tail that is dropped
    seen: list[tuple[int, ...]] = []
    def record(mod, args, kwargs):
        x = kwargs["input_ids"] if "input_ids" in kwargs else args[0]
        seen.extend(map(tuple, x.tolist()))

    h = teacher.register_forward_pre_hook(record, with_kwargs=True)
    try:
        rep = heal(student, teacher, ids, HealConfig(steps=15, lr=1e-3, seq_len=16, batch_size=2, warmup_steps=0))
    finally:
        h.remove()
    windows = {tuple(w) for w in ids[0, :160].view(10, 16).tolist()}
    first_pass = seen[:10]
    assert set(first_pass) == windows and len(first_pass) == 10  # all 10, none twice
    assert set(seen) <= windows and len(seen) == 30
    assert rep.steps == 15 and rep.tokens_seen == 15 * 2 * 16 and rep.best_step == 15 and not rep.eval_kl


def test_heal_lowers_held_out_kl_and_keeps_the_best_weights():
    teacher, student = _pair(seed=2)
    train, held = _stream(4096, 7), _stream(256, 8)
    rep = heal(student, teacher, train, HealConfig(steps=60, lr=3e-3, seq_len=32, eval_every=20), eval_ids=held)
    steps, kls = zip(*rep.eval_kl)
    assert steps == (0, 20, 40, 60)
    assert min(kls) < 0.85 * kls[0], rep.eval_kl  # measured 0.75
    # the kept weights are the best evaluated ones: re-measuring gives that KL
    w = held.view(-1, 32)
    ref = [teacher(x[None]).logits.float().log_softmax(-1) for x in w]
    assert held_out_kl(student, ref, w) == pytest.approx(min(kls), rel=1e-5)
    assert rep.best_step == steps[kls.index(min(kls))]


def test_a_harmful_run_is_rolled_back_to_the_converted_weights():
    teacher, student = _pair(seed=3)
    before = [p.detach().clone() for p in attention_parameters(student)]
    rep = heal(student, teacher, _stream(1024, 9), HealConfig(steps=6, lr=5.0, seq_len=32, warmup_steps=0,
                                                              eval_every=3), eval_ids=_stream(128, 10))
    assert all(kl > rep.eval_kl[0][1] for _, kl in rep.eval_kl[1:]), rep.eval_kl  # lr 5 only hurts
    assert rep.best_step == 0
    assert all(torch.equal(p, b) for p, b in zip(attention_parameters(student), before))
    assert all(p.requires_grad for p in student.parameters())  # flags restored


def test_schedule_warms_up_then_follows_a_cosine_over_steps_or_time():
    cfg = HealConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1, max_seconds=50.0)
    assert _lr_factor(cfg, 0, 0.0) == pytest.approx(0.1)
    assert _lr_factor(cfg, 9, 0.0) == pytest.approx(1.0)
    assert _lr_factor(cfg, 50, 0.0) == pytest.approx(0.1 + 0.9 * 0.5)  # half the steps
    assert _lr_factor(cfg, 20, 25.0) == pytest.approx(0.1 + 0.9 * 0.5)  # half the time, fewer steps
    assert _lr_factor(cfg, 20, 80.0) == pytest.approx(0.1)  # past the budget: the floor
    assert _lr_factor(HealConfig(steps=10, warmup_steps=0, min_lr_ratio=0.0), 10, 0.0) == pytest.approx(0.0)


def test_heal_input_errors():
    teacher, student = _pair()
    with pytest.raises(ValueError, match="less than one window"):
        heal(student, teacher, _stream(10, 1), HealConfig(seq_len=16))
    with pytest.raises(ValueError, match="HealConfig"):
        HealConfig(steps=0)
    with pytest.raises(ValueError, match="no M2LAAttention"):
        heal(teacher, teacher, _stream(64, 1), HealConfig(steps=1, seq_len=16))


def test_calibration_corpus_from_python_docs_and_files(tmp_path):
    from mcr.model.runtime.tiny import tiny_tokenizer

    tok = tiny_tokenizer()  # byte-level: one token per byte
    texts = python_reference_texts()
    assert len(texts) > 50 and sum(map(len, texts)) > 200_000  # Python ships a real reference manual
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("alpha beta ")
    (tmp_path / "own.txt").write_text("gamma ")
    ids = corpus_ids(tok, 5000, paths=[tmp_path / "own.txt", tmp_path / "docs"])
    assert ids.shape == (1, 5000)
    assert tok.decode(ids[0, :17]) == "gamma alpha beta "  # user files first, then the reference
    assert tok.decode(ids[0, 17:40]) == texts[0][:23]
    train, held = split_ids(ids, 1000)
    assert train.shape == (1, 4000) and torch.equal(held, ids[:, 4000:])
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        corpus_ids(tok, 10, paths=[tmp_path / "missing.txt"])
    with pytest.raises(ValueError, match="hold 6 tokens, 100 requested"):
        corpus_ids(tok, 100, paths=[tmp_path / "own.txt"], python_docs=False)
    assert corpus_ids(tok, None, paths=[tmp_path / "own.txt"], python_docs=False).shape == (1, 6)  # all of it
    with pytest.raises(ValueError, match="no calibration text"):
        corpus_ids(tok, None, python_docs=False)
    with pytest.raises(ValueError, match="held_out"):
        split_ids(ids, 0)


def test_one_healing_learning_rate_default():
    """`mcr convert --heal-lr` and HealConfig share one default (they had 5e-5 and 1e-4)."""
    from mcr.model.m2la.convert_cli import _parser

    args = _parser().parse_args(["model.gguf", "--out", "x"])
    assert args.heal_lr == HealConfig().lr == 5e-5
