"""A policy that asks any OpenAI-compatible chat-completions server: vLLM, SGLang, `mcr serve`, a hosted API.

Each turn sends the whole rendered context (the same append-stable messages
the local policies see, so a server with prefix caching — vLLM's
``--enable-prefix-caching``, SGLang's radix cache, ``mcr serve`` — prefills
only what was appended) and turns the reply into a Decision:

* **Tool calls**: with ``tool_calls: auto`` (default) the request carries the
  tools natively (``tools``); ``tool_calls`` in the reply are validated by the
  same parser as the local policy (:func:`~mcr.policies.parsing.parse_decision`)
  after being written in its ``<tool_call>`` form. If the server refuses
  native tools (vLLM without ``--enable-auto-tool-choice``), the policy falls
  back to ``text``: the schemas go into the system prompt and the model's text
  is parsed. ``native`` never falls back.
* **Media**: a whole-video part goes as a ``video_url`` part (with vLLM's
  ``mm_processor_kwargs`` fps / pixel budget); a span of the video, or every
  video with ``media: frames``, goes as timestamped ``image_url`` frames
  decoded here, so the server sees exactly the span; ``media: text`` sends a
  line naming the file (for text-only servers — such a model never sees
  pixels, so ``sees_pixels`` is False). URLs are ``file://`` (the server must
  be allowed to read them: vLLM's ``--allowed-local-media-path``) or, with
  ``media_urls: data``, inline base64 (hosted APIs).
* **Usage**: from the reply's ``usage`` block; ``prompt_tokens_details.
  cached_tokens`` (when the server reports it) is what was reused, the rest
  of the prompt counts as prefilled.

Network failures and HTTP errors are typed in :mod:`.openai_http`.
"""

from __future__ import annotations

import base64
import io
import json
import os
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mcr.context import Context, media_text
from mcr.policies.base import Decision, FinalAnswer, PolicyError
from mcr.policies.internvideo3 import FORMAT_INSTRUCTIONS, invalid_streak
from mcr.policies.openai_http import ChatClient, RequestRejected
from mcr.policies.parsing import parse_decision

__all__ = ["OpenAIPolicy", "OpenAISettings"]


class OpenAISettings(BaseModel):
    """``policy: {name: openai, settings: {...}}``."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(min_length=1, description="the server's OpenAI root, e.g. http://localhost:8000/v1")
    model: str = Field(min_length=1, description="the model name the server serves")
    api_key_env: str | None = Field(default=None, description="environment variable holding the API key")
    timeout_s: float = Field(default=120.0, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    backoff_s: float = Field(default=1.0, ge=0)
    max_tokens: int = Field(default=512, ge=1)
    temperature: float = Field(default=0.0, ge=0, le=2)
    seed: int | None = 0
    tool_calls: Literal["auto", "native", "text"] = "auto"
    media: Literal["video_url", "frames", "text"] = "video_url"
    media_urls: Literal["file", "data"] = "file"
    max_frames: int = Field(default=16, ge=1, description="frames per span when video goes as images")
    mm_processor_kwargs: bool = Field(default=True, description="send fps/pixel budget the vLLM way")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="merged into every request body")
    max_invalid_outputs: int = Field(default=3, ge=1)
    on_invalid: Literal["raise", "answer"] = "raise"
    system_prompt: str | None = None


def _text_tools_section(tools: list[dict[str, Any]]) -> str:
    """The tool list for servers without native tools (the Qwen/Hermes wording)."""
    lines = ["# Tools", "", "You may call one or more tools. Their signatures are listed in <tools></tools>:",
             "<tools>", *(json.dumps(t, ensure_ascii=False) for t in tools), "</tools>"]
    return "\n".join(lines)


class OpenAIPolicy:
    """The model behind a chat-completions server decides each step (see the module docstring).

    It holds no local session, so it offers no ``episode_model``: tools that
    need the episode's model (side queries, model grounding) answer with
    ``no_model`` and use their model-free modes, as in a scripted episode.
    """

    name = "openai"

    def __init__(self, settings: OpenAISettings, *, registry: Any = None, client: ChatClient | None = None):
        self.settings = settings
        self.registry = registry
        api_key = None
        if settings.api_key_env:
            api_key = os.environ.get(settings.api_key_env)
            if not api_key:
                raise PolicyError(f"policy setting api_key_env names {settings.api_key_env!r}, "
                                  "but that environment variable is not set")
        self.client = client or ChatClient(
            settings.base_url, api_key, timeout_s=settings.timeout_s, connect_timeout_s=settings.connect_timeout_s,
            max_retries=settings.max_retries, backoff_s=settings.backoff_s,
        )
        self.native_tools = settings.tool_calls != "text"
        self.sees_pixels = settings.media != "text"
        self.last_usage = None
        self._video_settings: dict[str, Any] = {}

    @classmethod
    def from_settings(cls, settings: dict[str, Any] | None = None, registry: Any = None) -> OpenAIPolicy:
        """Build from task settings (validated by :class:`OpenAISettings`)."""
        from pydantic import ValidationError

        try:
            spec = OpenAISettings.model_validate(settings or {})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"openai policy settings: {problems}") from None
        return cls(spec, registry=registry)

    # -- what every model policy does (as ModelPolicy, without a local session) -- #
    def messages(self, context: Context) -> list[dict[str, Any]]:
        """The context's chat messages, system prompt + reply format first (as the local policies)."""
        base = self.settings.system_prompt if self.settings.system_prompt is not None else context.system_prompt
        return context.render(system_prompt=f"{base}\n\n{FORMAT_INSTRUCTIONS}")

    def _check_retries(self, context: Context) -> FinalAnswer | None:
        streak = invalid_streak(context)
        if streak < self.settings.max_invalid_outputs:
            return None
        message = f"the model gave {streak} invalid outputs in a row; the last error: {context[len(context) - 1].message}"
        if self.settings.on_invalid == "raise":
            raise PolicyError(message)
        return FinalAnswer(text=f"No answer: {message}")

    @staticmethod
    def options_of(context: Context) -> tuple[str, ...] | None:
        return context.instruction.options if context.instruction is not None else None

    # -- one turn ------------------------------------------------------------ #
    def decide(self, context: Context, tools: list[dict[str, Any]]) -> Decision:
        give_up = self._check_retries(context)
        if give_up is not None:
            return self._with_usage(give_up, None)
        messages = self.request_messages(context, tools)
        t0 = time.perf_counter()
        reply = self._ask(messages, tools)
        latency = time.perf_counter() - t0
        message = reply["choices"][0]["message"]
        raw = self._as_text(message)
        usage = self._usage(reply.get("usage"), latency, raw)
        decision = parse_decision(raw, tools, options=self.options_of(context), registry=self.registry)
        if reply["choices"][0].get("finish_reason") == "length" and decision.kind == "invalid_output":
            decision = decision.model_copy(update={"error": decision.error + " (the reply was cut off; be shorter)"})
        return self._with_usage(decision, usage)

    def _ask(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
        s = self.settings
        body: dict[str, Any] = {"model": s.model, "messages": messages, "max_tokens": s.max_tokens,
                                "temperature": s.temperature, **s.extra_body}
        if s.seed is not None:
            body["seed"] = s.seed
        if s.mm_processor_kwargs and self.sees_pixels and self._video_settings:
            body.setdefault("mm_processor_kwargs", self._video_settings)
        if not (tools and self.native_tools):
            return self.client.complete(body)
        try:
            return self.client.complete({**body, "tools": tools, "tool_choice": "auto"})
        except RequestRejected as exc:
            if s.tool_calls == "native" or "tool" not in exc.server_message.lower():
                raise
        # The server cannot take native tools: describe them in the prompt from now on.
        self.native_tools = False
        return self.client.complete({**body, "messages": self._with_tools_text(messages, tools)})

    def request_messages(self, context: Context, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The context's messages in the OpenAI format this server gets (media per ``settings.media``)."""
        self._video_settings = {}
        out = [{"role": m["role"], "content": self._parts(m["content"])} for m in self.messages(context)]
        return out if (self.native_tools or not tools) else self._with_tools_text(out, tools)

    @staticmethod
    def _with_tools_text(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
        first = dict(messages[0])
        first["content"] = [*first["content"], {"type": "text", "text": "\n\n" + _text_tools_section(tools)}]
        return [first, *messages[1:]]

    # -- media ----------------------------------------------------------------- #
    def _parts(self, content: Any) -> list[dict[str, Any]]:
        if isinstance(content, str):
            return [{"type": "text", "text": content}]
        parts: list[dict[str, Any]] = []
        for part in content:
            kind = part.get("type", "text")
            if kind == "text":
                parts.append({"type": "text", "text": part["text"]})
            elif self.settings.media == "text":
                parts.append({"type": "text", "text": media_text(part)})
            elif kind == "image":
                parts.append({"type": "image_url", "image_url": {"url": self._url(Path(part["image"]), "image/jpeg")}})
            elif kind == "video":
                parts += self._video(part)
        return parts

    def _video(self, part: dict[str, Any]) -> list[dict[str, Any]]:
        if self.settings.media == "video_url" and _whole(part):
            self._video_settings = {k: part[k] for k in ("fps", "min_pixels", "max_pixels") if part.get(k)}
            return [{"type": "video_url", "video_url": {"url": self._url(Path(part["video"]), "video/mp4")}}]
        return self._frames(part)

    def _frames(self, part: dict[str, Any]) -> list[dict[str, Any]]:
        """Frames of the part's span at its fps (at most ``max_frames``), each after its time stamp."""
        from mcr.model.media.video import probe, read_frames_at

        path = str(part["video"])
        start = float(part.get("video_start") or 0.0)
        end = float(part["video_end"]) if part.get("video_end") is not None else probe(path).duration
        fps = float(part.get("fps") or 2.0)
        n = max(1, min(self.settings.max_frames, int((end - start) * fps) or 1))
        times = [start + (end - start) * (i + 0.5) / n for i in range(n)]
        out: list[dict[str, Any]] = []
        for t, frame in zip(times, read_frames_at(path, times)):
            out.append({"type": "text", "text": f"<{t:.1f} seconds>"})
            out.append({"type": "image_url", "image_url": {"url": _jpeg_data_url(frame.image, part.get("max_pixels"))}})
        return out

    def _url(self, path: Path, mime: str) -> str:
        if self.settings.media_urls == "file":
            return path.resolve().as_uri()
        data = base64.b64encode(path.read_bytes()).decode()
        mime = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}.get(path.suffix.lower(), mime)
        return f"data:{mime};base64,{data}"

    # -- reply ----------------------------------------------------------------- #
    @staticmethod
    def _as_text(message: dict[str, Any]) -> str:
        """The reply in the parser's form: native tool calls become ``<tool_call>`` blocks."""
        content = message.get("content") or ""
        if isinstance(content, list):  # some servers answer with parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        blocks = []
        for call in message.get("tool_calls") or []:
            fn = call.get("function", {}) if isinstance(call, dict) else {}
            args = fn.get("arguments", "{}")
            try:
                args = json.loads(args) if isinstance(args, str) else args
            except json.JSONDecodeError:
                pass  # left as a string: the parser says it is not JSON
            blocks.append("<tool_call>" + json.dumps({"name": fn.get("name"), "arguments": args}) + "</tool_call>")
        if not blocks:
            return str(content)
        thought = f"<think>{content.strip()}</think>" if str(content).strip() else ""
        return thought + "".join(blocks)

    def _usage(self, usage: Any, latency: float, raw: str) -> Any:
        from mcr.usage import Usage

        u = usage if isinstance(usage, dict) else {}
        prompt = int(u.get("prompt_tokens") or 0)
        details = u.get("prompt_tokens_details") or {}
        cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
        return Usage(prompt_tokens=prompt, reused_tokens=cached, prefilled_tokens=max(prompt - cached, 0),
                     generated_tokens=int(u.get("completion_tokens") or 0), latency_s=latency, raw_output=raw)

    def _with_usage(self, decision: Decision, usage: Any) -> Decision:
        """The decision carrying its cost (the graph counts it and writes it into the trace)."""
        self.last_usage = usage
        return decision if usage is None else decision.model_copy(update={"usage": usage})


def _whole(part: dict[str, Any]) -> bool:
    """Whether a video part covers the whole file (the first observation's span is [0, duration])."""
    if part.get("video_start") is None:
        return True
    if float(part["video_start"]) > 0.05:
        return False
    from mcr.model.media.video import probe

    return float(part.get("video_end") or 0.0) >= probe(part["video"]).duration - 0.05


def _jpeg_data_url(image: Any, max_pixels: int | None) -> str:
    """An (H, W, 3) uint8 frame as a JPEG data URL, scaled down to ``max_pixels``."""
    from PIL import Image

    img = Image.fromarray(image)
    if max_pixels and img.width * img.height > max_pixels:
        scale = (max_pixels / (img.width * img.height)) ** 0.5
        img = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))), Image.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
