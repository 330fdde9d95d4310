"""The transcribe tool's faster-whisper backend, on a tiny random Whisper.

No Whisper weights can be downloaded here, so the fixture builds one: a
2-layer `WhisperForConditionalGeneration` (transformers) with a byte-level BPE
tokenizer made with the `tokenizers` library in Whisper's token layout (256
byte tokens, then <|endoftext|>, <|startoftranscript|>, <|en|>, the task
tokens, <|notimestamps|>, and the 1501 timestamp tokens CTranslate2's
converter appends), converted offline with CTranslate2's TransformersConverter.
faster-whisper then runs its real pipeline — log-mel features, encoder,
decoding with temperature fallback, cross-attention word alignment. The text
is random bytes; what is checked is everything around it: backend choice,
VAD regions, time offsets, clamping, caching. The timestamp rows of the
decoder embedding are zeroed, or the random model emits only timestamps.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mcr.context import Context, TimeSpan, VideoRef
from mcr.model.media.audio import VadSettings, energy_regions, load_audio, silero_regions
from mcr.tools.asr import TranscribeTool
from mcr.tools.base import ToolContext, ToolFailure

pytest.importorskip("faster_whisper")
pytest.importorskip("ctranslate2")

SPAN = {"start": 12.0, "end": 16.0}  # the third narration, 12.5-15.3 s
# Greedy, no temperature fallback (a random model always "fails" the fallback
# checks and would be re-decoded with sampling 5 more times), short outputs.
FAST = {"beam_size": 1, "temperature": 0.0, "max_new_tokens": 40}
PAD = 0.4  # the Whisper backend pads its gate's regions like faster-whisper's own VAD filter


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory) -> Path:
    import torch
    from ctranslate2.converters import TransformersConverter
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import (
        PreTrainedTokenizerFast,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
    )

    root = tmp_path_factory.mktemp("whisper")
    hf = root / "hf"
    byte_vocab = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    tok = Tokenizer(models.BPE(vocab=byte_vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = [
        "<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>",
        "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>",
    ]  # fmt: skip
    tok.add_special_tokens([AddedToken(s, special=True) for s in specials])
    eot, sot = tok.token_to_id("<|endoftext|>"), tok.token_to_id("<|startoftranscript|>")
    no_timestamps = tok.token_to_id("<|notimestamps|>")
    PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=specials[0], eos_token=specials[0], unk_token=specials[0], pad_token=specials[0]
    ).save_pretrained(hf)

    config = WhisperConfig(
        vocab_size=tok.get_vocab_size() + 1501,  # + timestamps <|0.00|> ... <|30.00|>
        num_mel_bins=80,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_source_positions=1500,  # 30 s windows of 100 mel frames/s, conv stride 2
        max_target_positions=448,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=sot,
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():
        model.model.decoder.embed_tokens.weight[no_timestamps + 1 :] = 0  # (1501, 64) timestamp rows
    model.generation_config.suppress_tokens = []
    model.generation_config.begin_suppress_tokens = [eot]
    model.save_pretrained(hf)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(hf)

    out = root / "ct2"
    TransformersConverter(str(hf), copy_files=["tokenizer.json", "preprocessor_config.json"]).convert(str(out))
    return out


def make_ctx(video: Path, workdir: Path, **settings) -> ToolContext:
    return ToolContext(context=Context(), video=VideoRef(path=str(video)), workdir=workdir, settings=settings)


@pytest.fixture(scope="module")
def tool() -> TranscribeTool:
    return TranscribeTool()


def test_auto_uses_the_configured_whisper_model(tool, whisper_dir, sample_video, tmp_path):
    ctx = make_ctx(sample_video, tmp_path, whisper_model=str(whisper_dir), **FAST, cache=False)
    out = tool({"span": SPAN}, ctx)
    assert out.backend == "faster_whisper"
    assert out.segments and out.text  # the decoder produced tokens
    clip = load_audio(sample_video, SPAN["start"], SPAN["end"])
    (padded,) = silero_regions(clip, pad_s=PAD)  # the gate the tool uses for Whisper
    region = (padded[0] + PAD, padded[1] - PAD)  # times are clamped to where speech was heard
    for seg in out.segments:  # everything sits in the one speech region, in video time
        assert region[0] <= seg.span.start <= seg.span.end <= region[1]
        assert all(region[0] <= w.start <= w.end <= region[1] for w in seg.words)
        assert all(w.confidence is not None and 0 <= w.confidence <= 1 for w in seg.words)
    assert any(seg.words for seg in out.segments)  # cross-attention alignment ran
    again = tool({"span": SPAN}, ctx)
    assert again == out  # greedy decoding is deterministic


def test_whisper_results_are_cached_apart_from_pocketsphinx(tool, whisper_dir, sample_video, tmp_path):
    whisper = tool({"span": SPAN}, make_ctx(sample_video, tmp_path, whisper_model=str(whisper_dir), **FAST))
    sphinx = tool({"span": SPAN, "backend": "pocketsphinx"}, make_ctx(sample_video, tmp_path))
    assert whisper.backend == "faster_whisper" and sphinx.backend == "pocketsphinx"
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 2
    hit = tool({"span": SPAN}, make_ctx(sample_video, tmp_path, whisper_model=str(whisper_dir), **FAST))
    assert hit == whisper


def test_energy_gate_with_whisper(tool, whisper_dir, sample_video, tmp_path):
    ctx = make_ctx(sample_video, tmp_path, whisper_model=str(whisper_dir), **FAST, vad="energy", cache=False)
    out = tool({"span": SPAN}, ctx)
    (region,) = energy_regions(load_audio(sample_video, SPAN["start"], SPAN["end"]), VadSettings(pad_s=0.0))
    assert out.segments
    assert all(region[0] - 0.01 <= s.span.start <= s.span.end <= region[1] + 0.01 for s in out.segments)
    assert TimeSpan(start=region[0], end=region[1]).iou(TimeSpan(start=12.5, end=15.3)) > 0.8


def test_model_folder_without_tokenizer_is_refused(tool, whisper_dir, sample_video, tmp_path):
    """faster-whisper would fetch a tokenizer from the hub; offline that hangs, so refuse early."""
    broken = tmp_path / "no_tokenizer"
    broken.mkdir()
    for name in ("model.bin", "config.json", "vocabulary.json", "preprocessor_config.json"):
        (broken / name).symlink_to(whisper_dir / name)
    with pytest.raises(ToolFailure) as info:
        tool({"backend": "faster_whisper"}, make_ctx(sample_video, tmp_path, whisper_model=str(broken)))
    assert info.value.error_type == "backend_unavailable" and "tokenizer.json" in str(info.value)
    # auto falls back to pocketsphinx instead of failing
    out = tool({"span": {"start": 4.0, "end": 6.0}}, make_ctx(sample_video, tmp_path, whisper_model=str(broken)))
    assert out.backend == "pocketsphinx"


def test_bad_language_and_corrupt_model_are_input_errors(tool, whisper_dir, sample_video, tmp_path):
    ctx = make_ctx(sample_video, tmp_path, whisper_model=str(whisper_dir), **FAST)
    with pytest.raises(ToolFailure) as info:
        tool({"backend": "faster_whisper", "language": "klingon"}, ctx)
    assert info.value.error_type == "backend_unavailable" and "klingon" in str(info.value)
    with pytest.raises(ToolFailure) as info:
        tool({"span": SPAN}, make_ctx(sample_video, tmp_path, whisper_model=str(whisper_dir), beam_size="wide"))
    assert info.value.error_type == "invalid_settings" and "beam_size" in str(info.value)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for name in ("config.json", "vocabulary.json", "preprocessor_config.json", "tokenizer.json"):
        (corrupt / name).symlink_to(whisper_dir / name)
    (corrupt / "model.bin").write_bytes(b"not a model" * 10)
    with pytest.raises(ToolFailure) as info:
        tool({"span": SPAN}, make_ctx(sample_video, tmp_path, whisper_model=str(corrupt), cache=False))
    assert info.value.error_type == "backend_unavailable" and "corrupt" in str(info.value)


@pytest.mark.slow
def test_default_decoding_settings_on_the_whole_sample(whisper_dir, sample_video, tmp_path):
    """Beam 5 with the full temperature-fallback ladder (what a real model runs with)."""
    out = TranscribeTool()({}, make_ctx(sample_video, tmp_path, whisper_model=str(whisper_dir), cache=False))
    regions = silero_regions(load_audio(sample_video), pad_s=PAD)
    assert out.backend == "faster_whisper" and out.segments
    for seg in out.segments:
        assert any(a <= seg.span.start <= seg.span.end <= b for a, b in regions)
    assert [s.span.start for s in out.segments] == sorted(s.span.start for s in out.segments)
