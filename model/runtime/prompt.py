"""Render chat messages to the exact tokens (and media tensors) a model session feeds.

`PromptRenderer.render(messages, tools)` applies the model's chat template,
then replaces each media placeholder with that item's tokens. For Qwen3-VL /
InternVideo3 a video becomes, per temporal patch, ``<t seconds>`` followed by
``<|vision_start|>`` + ``<|video_pad|>`` x (h*w / merge^2) + ``<|vision_end|>``
(the reference Qwen3-VL prompt format); an image becomes one such block of
``<|image_pad|>``. Every token also carries a *key*: ``None`` for text, the
media item's key for media tokens, so two videos that happen to produce the
same placeholder ids never match in the session's prefix comparison.

A media key hashes the file's content with the sampling settings (fps, pixel
budget, span), so it names exactly the frames the model saw. Processed media
(pixel values) are kept in memory by key; their *layout* (token ids, grid) can
also be written beside saved prefixes, so a second question on the same video
renders its prompt — and finds the saved prefix — without decoding the video.

Text-only models (SmolLM2, any causal LM) get media parts as a line of text
naming the file and span, and tool schemas inside the system message when
their chat template does not take ``tools=``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import torch

from mcr.context import media_text

__all__ = ["MediaItem", "Prompt", "PromptRenderer", "RenderError", "tools_section"]

_PLACEHOLDER = re.compile(r"<\|vision_start\|>(<\|video_pad\|>|<\|image_pad\|>)<\|vision_end\|>")


class RenderError(ValueError):
    """The messages cannot be rendered for this model (e.g. a missing media file)."""


@dataclass
class MediaItem:
    """One video or image as the model sees it.

    Attributes:
        key: content hash + sampling settings.
        kind: ``"video"`` or ``"image"``.
        token_ids: the tokens that replace its placeholder.
        grid_thw: ``(1, 3)`` patch grid (temporal patches, height, width).
        loader: computes the pixel values on first use (none needed for layouts
            read back from disk until the item must be prefilled again).
    """

    key: str
    kind: Literal["video", "image"]
    token_ids: list[int]
    grid_thw: torch.Tensor
    loader: Callable[[], torch.Tensor] | None = None
    _pixels: torch.Tensor | None = field(default=None, repr=False)

    def pixel_values(self) -> torch.Tensor:
        """``(patches, C * temporal_patch * patch^2)`` as the vision tower takes them."""
        if self._pixels is None:
            if self.loader is None:
                raise RenderError(f"media {self.key} has no pixels and no way to load them")
            self._pixels = self.loader()
        return self._pixels

    def layout(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "token_ids": self.token_ids, "grid_thw": self.grid_thw.tolist()}


@dataclass
class Prompt:
    """Token ids with per-token media keys and modality types, and the media in order."""

    ids: list[int]
    keys: list[str | None]
    mm_types: list[int]  # 0 text, 1 image, 2 video (what Qwen3-VL calls mm_token_type_ids)
    media: list[tuple[int, MediaItem]] = field(default_factory=list)  # (first token index, item)
    text: str = ""

    def __len__(self) -> int:
        return len(self.ids)


def tools_section(tools: list[dict[str, Any]]) -> str:
    """The tool list in the Qwen format, for chat templates without ``tools=``."""
    lines = [
        "# Tools",
        "",
        "You may call one or more tools. Their signatures are listed in <tools></tools>:",
        "<tools>",
        *(json.dumps(t, ensure_ascii=False) for t in tools),
        "</tools>",
        "",
        "To call a tool, reply with a JSON object inside <tool_call></tool_call> tags:",
        "<tool_call>",
        '{"name": <tool-name>, "arguments": <arguments-object>}',
        "</tool_call>",
    ]
    return "\n".join(lines)


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | Path) -> str:
    """sha256 of a file's content (memoised by path, size and mtime)."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise RenderError(f"media file not found: {path} — check the path in the context") from None
    ident = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if ident not in _DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _DIGESTS[ident] = h.hexdigest()
    return _DIGESTS[ident]


def media_key(part: dict[str, Any]) -> str:
    """Content hash + sampling settings of one media part."""
    path = part.get("video") if part.get("type") == "video" else part.get("image")
    settings = {k: part.get(k) for k in ("type", "fps", "min_pixels", "max_pixels", "video_start", "video_end")}
    if part.get("max_frames") is not None:
        settings["max_frames"] = part["max_frames"]
    blob = json.dumps([file_digest(str(path)), settings], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class PromptRenderer:
    """Messages → :class:`Prompt` for one model (template, tokenizer, processor)."""

    def __init__(self, loaded: Any):
        self.tokenizer = loaded.tokenizer
        self.processor = loaded.processor
        self.multimodal = loaded.multimodal
        template = getattr(self.tokenizer, "chat_template", None) or ""
        if self.processor is not None and getattr(self.processor, "chat_template", None):
            template = self.processor.chat_template
        self.template = template
        self.template_takes_tools = "tools" in template
        self._media: dict[str, MediaItem] = {}
        self._layout_dirs: list[Path] = []

    # -- text ------------------------------------------------------------------ #
    def chat_text(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> str:
        """The chat template's text, media still as placeholders, generation prompt added."""
        if not messages:
            raise RenderError("nothing to render: the message list is empty")
        msgs = [dict(m) for m in messages]
        if not self.multimodal:
            msgs = [{"role": m["role"], "content": self._flatten(m["content"])} for m in msgs]
        pass_tools = tools if tools and self.template_takes_tools else None
        if tools and not self.template_takes_tools:
            section = tools_section(tools)
            if msgs[0]["role"] == "system":
                msgs[0] = {"role": "system", "content": self._append_text(msgs[0]["content"], section)}
            else:
                msgs.insert(0, {"role": "system", "content": section})
        kwargs = {"tools": pass_tools} if pass_tools else {}
        return self.tokenizer.apply_chat_template(
            msgs, tokenize=False, add_generation_prompt=True, chat_template=self.template or None, **kwargs
        )

    @staticmethod
    def _flatten(content: Any) -> str:
        if isinstance(content, str):
            return content
        return "\n".join(p["text"] if p.get("type", "text") == "text" else media_text(p) for p in content)

    @staticmethod
    def _append_text(content: Any, text: str) -> Any:
        if isinstance(content, str):
            return f"{content}\n\n{text}"
        return [*content, {"type": "text", "text": text}]

    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> Prompt:
        """Token ids, keys and media of ``messages`` plus the generation prompt."""
        text = self.chat_text(messages, tools)
        if not self.multimodal:
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            return Prompt(ids=ids, keys=[None] * len(ids), mm_types=[0] * len(ids), text=text)
        parts = [p for m in messages if isinstance(m["content"], list) for p in m["content"]
                 if p.get("type") in ("video", "image")]
        pieces = _PLACEHOLDER.split(text)  # text, pad, text, pad, ..., text
        n_slots = (len(pieces) - 1) // 2
        if n_slots != len(parts):
            raise RenderError(
                f"the chat template produced {n_slots} media placeholders for {len(parts)} media parts; "
                "use a Qwen-VL chat template"
            )
        prompt = Prompt(ids=[], keys=[], mm_types=[], text=text)
        for i, piece in enumerate(pieces[0::2]):
            ids = self.tokenizer(piece, add_special_tokens=False)["input_ids"] if piece else []
            prompt.ids += ids
            prompt.keys += [None] * len(ids)
            prompt.mm_types += [0] * len(ids)
            if i < len(parts):
                item = self.media(parts[i])
                prompt.media.append((len(prompt.ids), item))
                prompt.ids += item.token_ids
                pad = self._token_id("<|video_pad|>" if item.kind == "video" else "<|image_pad|>")
                code = 2 if item.kind == "video" else 1
                prompt.keys += [item.key] * len(item.token_ids)
                prompt.mm_types += [code if t == pad else 0 for t in item.token_ids]
        return prompt

    def _token_id(self, token: str) -> int:
        return self.tokenizer.convert_tokens_to_ids(token)

    # -- media ------------------------------------------------------------------ #
    def media(self, part: dict[str, Any]) -> MediaItem:
        """The processed item for one media part (memoised by key)."""
        key = media_key(part)
        if key in self._media:
            return self._media[key]
        item = self._layout_from_disk(key, part)
        if item is None:
            item = self._video(part, key) if part["type"] == "video" else self._image(part, key)
        self._media[key] = item
        return item

    def remember_media(self, folder: Path) -> None:
        """Write the layouts of all known media under ``folder/media`` (beside saved prefixes)."""
        target = folder / "media"
        target.mkdir(parents=True, exist_ok=True)
        for key, item in self._media.items():
            path = target / f"{key}.json"
            if not path.exists():
                path.write_text(json.dumps(item.layout()))
        if folder not in self._layout_dirs:
            self._layout_dirs.append(folder)

    def use_layouts_from(self, folder: Path) -> None:
        """Read media layouts saved under ``folder/media`` instead of decoding media to render."""
        if folder not in self._layout_dirs:
            self._layout_dirs.append(folder)

    def _layout_from_disk(self, key: str, part: dict[str, Any]) -> MediaItem | None:
        for folder in self._layout_dirs:
            path = folder / "media" / f"{key}.json"
            if path.is_file():
                data = json.loads(path.read_text())
                item = MediaItem(key, data["kind"], data["token_ids"], torch.tensor(data["grid_thw"]))
                item.loader = lambda part=part, key=key: self._process(part, key)[1]
                return item
        return None

    def _process(self, part: dict[str, Any], key: str) -> tuple[torch.Tensor, torch.Tensor]:
        item = self._video(part, key) if part["type"] == "video" else self._image(part, key)
        return item.grid_thw, item.pixel_values()

    def _video(self, part: dict[str, Any], key: str) -> MediaItem:
        from transformers.video_utils import VideoMetadata

        from mcr.context import TimeSpan
        from mcr.model.media.sampling import SamplingSpec, sample_video

        vp = self.processor.video_processor
        spec = SamplingSpec(
            fps=part.get("fps", 2.0),
            min_pixels=part.get("min_pixels"),
            max_pixels=part.get("max_pixels"),
            image_patch_size=vp.patch_size,
            **({"max_frames": int(part["max_frames"])} if part.get("max_frames") else {}),
        )
        span = None
        if part.get("video_start") is not None:
            span = TimeSpan(start=float(part["video_start"]), end=float(part["video_end"]))
        clip = sample_video(part["video"], spec, span)
        frames = torch.from_numpy(clip.frames.copy()).permute(0, 3, 1, 2)  # (T, 3, H, W) uint8
        meta = VideoMetadata(
            total_num_frames=max(clip.plan.frame_indices) + 1,
            fps=clip.plan.source_fps,
            frames_indices=list(clip.plan.frame_indices),
        )
        out = vp(videos=[frames], video_metadata=[meta], do_sample_frames=False, do_resize=False, return_tensors="pt")
        grid = out["video_grid_thw"]  # (1, 3)
        per_frame = int(grid[0, 1] * grid[0, 2]) // vp.merge_size**2
        stamps = _patch_timestamps(list(clip.plan.frame_indices), clip.plan.source_fps, vp.temporal_patch_size)
        start, end, pad = (self._token_id(t) for t in ("<|vision_start|>", "<|vision_end|>", "<|video_pad|>"))
        ids: list[int] = []
        for t in range(int(grid[0, 0])):
            ids += self.tokenizer(f"<{stamps[t]:.1f} seconds>", add_special_tokens=False)["input_ids"]
            ids += [start] + [pad] * per_frame + [end]
        return MediaItem(key, "video", ids, grid, _pixels=out["pixel_values_videos"])

    def _image(self, part: dict[str, Any], key: str) -> MediaItem:
        from PIL import Image

        from mcr.model.media.sampling import smart_resize

        ip = self.processor.image_processor
        try:
            image = Image.open(part["image"]).convert("RGB")
        except (FileNotFoundError, OSError) as exc:
            raise RenderError(f"cannot open image {part['image']}: {exc}") from None
        factor = ip.patch_size * ip.merge_size
        h, w = smart_resize(
            image.height, image.width, factor,
            part.get("min_pixels") or 4 * factor * factor, part.get("max_pixels") or 16384 * factor * factor,
        )
        image = image.resize((w, h), Image.BICUBIC)
        out = ip(images=[image], do_resize=False, return_tensors="pt")
        grid = out["image_grid_thw"]  # (1, 3)
        n = int(grid[0].prod()) // ip.merge_size**2
        start, end, pad = (self._token_id(t) for t in ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>"))
        return MediaItem(key, "image", [start] + [pad] * n + [end], grid, _pixels=out["pixel_values"])


def _patch_timestamps(indices: list[int], fps: float, temporal_patch: int) -> list[float]:
    """Mid time of each temporal patch (the last frame repeats to fill the final patch)."""
    idx = list(indices)
    while len(idx) % temporal_patch:
        idx.append(idx[-1])
    times = [i / fps for i in idx]
    return [(times[i] + times[i + temporal_patch - 1]) / 2 for i in range(0, len(times), temporal_patch)]
