"""A tiny Qwen3-VL built in code: config, byte-level tokenizer, processor, random weights.

No model hub is reachable here, yet the InternVideo3 path (multimodal RoPE,
video tokens with timestamps, deepstack vision features, the chat template with
tools) must run in tests, benchmarks and the demo. This module builds a model
with exactly the Qwen3-VL architecture at toy size: its outputs are random, but
every code path of the real 8B model is exercised.

The tokenizer is byte-level BPE with no merges (every UTF-8 byte is a token)
plus the Qwen special tokens, so any text round-trips without a vocabulary file.
The chat template is written here in the Qwen format (``<|im_start|>role``
blocks, a ``# Tools`` section listing JSON schemas, ``<tool_call>`` replies);
media parts render as ``<|vision_start|><|video_pad|><|vision_end|>``, which
:mod:`mcr.model.runtime.session` expands into per-frame blocks.
"""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = [
    "TINY_CHAT_TEMPLATE",
    "SPECIAL_TOKENS",
    "tiny_tokenizer",
    "tiny_qwen3vl_config",
    "build_tiny_qwen3vl",
    "save_tiny_qwen3vl",
]

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Qwen-format chat template (our own wording). Content is a string or a list of
# parts; text parts are joined with newlines; media parts become placeholders.
TINY_CHAT_TEMPLATE = r"""
{%- macro render_content(content) -%}
{%- if content is string -%}{{ content }}
{%- else -%}
{%- for part in content -%}
{%- if not loop.first %}{{ '\n' }}{% endif -%}
{%- if part.type == 'video' -%}<|vision_start|><|video_pad|><|vision_end|>
{%- elif part.type == 'image' -%}<|vision_start|><|image_pad|><|vision_end|>
{%- else -%}{{ part.text }}
{%- endif -%}
{%- endfor -%}
{%- endif -%}
{%- endmacro -%}
{%- set first = messages[0] if messages else none -%}
{%- if first is not none and first.role == 'system' -%}
<|im_start|>system
{{ render_content(first.content) }}
{%- set rest = messages[1:] -%}
{%- else -%}
<|im_start|>system
You are a helpful assistant.
{%- set rest = messages -%}
{%- endif -%}
{%- if tools -%}
{{ '\n\n# Tools\n\nYou may call one or more tools. Their signatures are listed in <tools></tools>:\n<tools>' }}
{%- for tool in tools -%}
{{ '\n' }}{{ tool | tojson }}
{%- endfor -%}
{{ '\n</tools>\n\nTo call a tool, reply with a JSON object inside <tool_call></tool_call> tags:\n<tool_call>\n{"name": <tool-name>, "arguments": <arguments-object>}\n</tool_call>' }}
{%- endif %}<|im_end|>
{% for message in rest -%}
<|im_start|>{{ message.role }}
{{ render_content(message.content) }}<|im_end|>
{% endfor -%}
{%- if add_generation_prompt -%}
<|im_start|>assistant
{% endif -%}
"""


def tiny_tokenizer():
    """A byte-level tokenizer with the Qwen special tokens (vocabulary 263)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    core = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens(list(SPECIAL_TOKENS))
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=TINY_CHAT_TEMPLATE,
    )
    return tok


def tiny_qwen3vl_config(tokenizer=None, *, hidden_size: int = 64, num_layers: int = 2, **text_overrides):
    """A Qwen3-VL config at toy size (2 text layers of width 64, 2 vision blocks).

    Args:
        tokenizer: the tokenizer whose special-token ids the config must name
            (defaults to :func:`tiny_tokenizer`).
        hidden_size: text model width (head_dim 16, 4 query / 2 KV heads).
        num_layers: text decoder layers.
        **text_overrides: extra text-config fields (e.g. M^2LA ``kv_lora_rank``).
    """
    from transformers import Qwen3VLConfig

    tok = tokenizer if tokenizer is not None else tiny_tokenizer()
    ids = {s: tok.convert_tokens_to_ids(s) for s in SPECIAL_TOKENS}
    text = dict(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=32768,
        # head_dim 16 -> 8 rotary frequencies split over (t, h, w).
        rope_parameters=dict(rope_type="default", rope_theta=10000.0, mrope_section=[2, 3, 3], mrope_interleaved=True),
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    text.update(text_overrides)
    vision = dict(
        depth=2,
        hidden_size=32,
        intermediate_size=64,
        num_heads=2,
        patch_size=16,
        spatial_merge_size=2,
        temporal_patch_size=2,
        out_hidden_size=hidden_size,
        num_position_embeddings=64,
        deepstack_visual_indexes=[0],
    )
    return Qwen3VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )


def tiny_processor(tokenizer=None):
    """A Qwen3-VL processor (image + video processors) around the tiny tokenizer.

    Pixel budgets are small (64x64 .. 128x128 per frame) so a few seconds of
    video become a few dozen tokens.
    """
    from transformers.models.qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen3_vl import Qwen3VLProcessor, Qwen3VLVideoProcessor

    tok = tokenizer if tokenizer is not None else tiny_tokenizer()
    video = Qwen3VLVideoProcessor(
        patch_size=16,
        temporal_patch_size=2,
        merge_size=2,
        size={"shortest_edge": 64 * 64, "longest_edge": 128 * 128 * 16},
        cap_pixels_per_frame=True,
    )
    image = Qwen2VLImageProcessor(
        patch_size=16, temporal_patch_size=2, merge_size=2, size={"shortest_edge": 64 * 64, "longest_edge": 128 * 128}
    )
    return Qwen3VLProcessor(image_processor=image, tokenizer=tok, video_processor=video, chat_template=TINY_CHAT_TEMPLATE)


def build_tiny_qwen3vl(seed: int = 0, dtype: torch.dtype = torch.float32, **text_overrides):
    """Build ``(model, processor)``: a random-weight Qwen3-VL and its processor.

    The same seed gives the same weights, so two builds are interchangeable.
    """
    from transformers import Qwen3VLForConditionalGeneration

    processor = tiny_processor()
    config = tiny_qwen3vl_config(processor.tokenizer, **text_overrides)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Qwen3VLForConditionalGeneration(config)
    return model.to(dtype).eval(), processor


def save_tiny_qwen3vl(path: str | Path, seed: int = 0) -> Path:
    """Write a tiny Qwen3-VL checkpoint folder (config, safetensors, processor).

    The folder looks like a downloaded Hugging Face checkpoint, so tests drive
    the real loader (:func:`mcr.model.runtime.loader.load_model`) with it.
    """
    path = Path(path)
    model, processor = build_tiny_qwen3vl(seed)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
