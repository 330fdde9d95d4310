"""The OpenAI chat-completions wire format, and its mapping to our runtime's messages.

Only what `mcr serve` needs: a request (messages with text, ``image_url`` and
``video_url`` parts, tools), a response (one choice, ``tool_calls`` when the
model wrote ``<tool_call>`` blocks, usage with
``prompt_tokens_details.cached_tokens``) and the OpenAI error body. Requests
are validated here, once, so the server never touches raw dicts.

Media URLs: a local server must not read any file a client names, so
``file://`` URLs and bare paths are accepted only under the folders the server
was started with (``--allowed-media-path``, as vLLM's
``--allowed-local-media-path``); ``data:`` URLs are written to the server's
media folder, named by their content hash; ``http(s)`` URLs are refused (the
server is offline).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, ConfigDict, Field

from mcr.tools.base import schema_function

__all__ = [
    "ChatRequest", "ChatMessage", "RequestError", "to_runtime_messages", "split_tool_calls", "chat_response",
    "error_body", "prompt_chars", "chat_chunk", "usage_body", "logprob_entry",
]


class RequestError(ValueError):
    """A request the server cannot serve; ``status`` is the HTTP code (4xx/5xx)."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid_request_error", param: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.param = param


class _URL(BaseModel):
    model_config = ConfigDict(extra="allow")
    url: str = Field(min_length=1)


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["text"]
    text: str


class ImagePart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["image_url"]
    image_url: _URL


class VideoPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["video_url"]
    video_url: _URL


ContentPart = Annotated[Union[TextPart, ImagePart, VideoPart], Field(discriminator="type")]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None


# Fields that change nothing about the reply (bookkeeping for OpenAI's own platform): accepted, unused.
_BOOKKEEPING = {"user", "metadata", "store", "service_tier", "prompt_cache_key", "safety_identifier"}
# Fields that would change the reply and are not implemented: refused when set, never ignored.
_UNSUPPORTED = {
    "frequency_penalty": "repetition penalties are not implemented",
    "presence_penalty": "repetition penalties are not implemented",
    "logit_bias": "logit_bias is not implemented",
    "audio": "the served models neither hear nor speak audio",
    "modalities": "only text output is served",
    "prediction": "predicted outputs are not implemented",
    "functions": "the legacy functions field is not served; send tools",
    "function_call": "the legacy function_call field is not served; send tool_choice",
    "web_search_options": "mcr serve is offline and does not search the web",
    "reasoning_effort": "the served models have no reasoning-effort setting",
    "verbosity": "the served models have no verbosity setting",
}
_NEUTRAL = {"frequency_penalty": 0, "presence_penalty": 0, "logit_bias": {}, "modalities": ["text"]}


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: bool = False


class ChatRequest(BaseModel):
    """``POST /v1/chat/completions``.

    Fields that would change the reply but are not implemented (penalties,
    ``logit_bias``, audio, ...) are refused by :meth:`unsupported`; unknown
    fields too. Only bookkeeping fields (``user``, ``metadata``, ``store``, ...)
    are accepted without effect.
    """

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=8192)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    n: int = Field(default=1, ge=1)
    mm_processor_kwargs: dict[str, Any] | None = None  # vLLM's name: fps, min_pixels, max_pixels

    def budget(self, default: int) -> int:
        return self.max_completion_tokens or self.max_tokens or default

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(s for s in self.stop if s)

    def wants_tools(self) -> bool:
        return bool(self.tools) and self.tool_choice != "none"

    def unsupported(self) -> tuple[str, str] | None:
        """``(field, why)`` of the first field set that this server would otherwise have to ignore."""
        if self.n != 1:
            return "n", "n > 1 is not supported; send one request per completion"
        if self.top_logprobs is not None and not self.logprobs:
            return "top_logprobs", "top_logprobs needs logprobs: true"
        if self.stream_options is not None and not self.stream:
            return "stream_options", "stream_options needs stream: true"
        if isinstance(self.tool_choice, str) and self.tool_choice not in ("none", "auto", "required"):
            return "tool_choice", f"tool_choice {self.tool_choice!r}: use none, auto, required or a named function"
        for name, value in (self.model_extra or {}).items():
            if name in _BOOKKEEPING or value is None:
                continue
            if name in _NEUTRAL and value == _NEUTRAL[name]:
                continue
            if name in _UNSUPPORTED:
                return name, f"{name}: {_UNSUPPORTED[name]}"
            return name, (f"{name} is not a field this server knows; it serves model, messages, tools, "
                          "tool_choice, parallel_tool_calls, response_format, max_tokens, max_completion_tokens, "
                          "temperature, top_p, seed, stop, stream, stream_options, logprobs, top_logprobs, n (1), "
                          "mm_processor_kwargs")
        return None


# --------------------------------------------------------------------------- #
# OpenAI messages -> runtime messages (the renderer's Qwen-VL format)
# --------------------------------------------------------------------------- #

_MEDIA_KEYS = ("fps", "min_pixels", "max_pixels")


class MediaResolver:
    """Turns media URLs into local paths, within the folders the server allows."""

    def __init__(self, allowed: list[Path], store: Path):
        self.allowed = [p.resolve() for p in allowed]
        self.store = store

    def __call__(self, url: str, where: str) -> str:
        if url.startswith("data:"):
            return self._data_url(url, where)
        parsed = urlparse(url)
        if parsed.scheme in ("http", "https"):
            raise RequestError(f"{where}: mcr serve is offline and does not fetch {parsed.scheme} URLs; "
                               "send a file:// URL under an allowed media path, or a data: URL", param=where)
        if parsed.scheme not in ("", "file"):
            raise RequestError(f"{where}: unsupported URL scheme {parsed.scheme!r}; use file:// or data:", param=where)
        written = unquote(parsed.path if parsed.scheme == "file" else url)
        try:
            path = Path(written).resolve()
        except (OSError, RuntimeError, ValueError) as exc:  # a NUL byte (%00), a symlink loop
            raise RequestError(f"{where}: {written[:200]!r} is not a usable path ({type(exc).__name__}); "
                               "send the file:// URL of a media file", param=where) from None
        if not any(path.is_relative_to(root) for root in self.allowed):
            allowed = ", ".join(map(str, self.allowed)) or "(none: start the server with --allowed-media-path DIR)"
            raise RequestError(f"{where}: {path} is outside the allowed media paths ({allowed})", status=403,
                               code="media_not_allowed", param=where)
        if not path.is_file():
            raise RequestError(f"{where}: media file not found: {path}", param=where)
        return str(path)

    def _data_url(self, url: str, where: str) -> str:
        match = re.match(r"data:([\w.+-]+/[\w.+-]+)?(;base64)?,(.*)", url, re.S)
        if not match or not match.group(2):
            raise RequestError(f"{where}: a data URL must be base64 (data:<mime>;base64,<data>)", param=where)
        try:
            blob = base64.b64decode(match.group(3), validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(f"{where}: the data URL's base64 payload does not decode", param=where) from None
        suffix = {"image/png": ".png", "image/jpeg": ".jpg", "video/mp4": ".mp4"}.get(match.group(1) or "", ".bin")
        self.store.mkdir(parents=True, exist_ok=True)
        path = self.store / f"{hashlib.sha256(blob).hexdigest()[:32]}{suffix}"
        if not path.exists():
            tmp = path.with_suffix(f".tmp{uuid.uuid4().hex[:8]}")
            tmp.write_bytes(blob)
            tmp.replace(path)
        return str(path)


def _tool_call_text(call: dict[str, Any], where: str) -> str:
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise RequestError(f"{where}: a tool call needs function.name", param=where)
    args = fn.get("arguments", "{}")
    try:
        parsed = json.loads(args) if isinstance(args, str) else args
    except json.JSONDecodeError:
        raise RequestError(f"{where}: function.arguments is not JSON", param=where) from None
    return "<tool_call>" + json.dumps({"name": fn["name"], "arguments": parsed}, sort_keys=True) + "</tool_call>"


def to_runtime_messages(
    request: ChatRequest, resolve: MediaResolver, multimodal: bool
) -> list[dict[str, Any]]:
    """The request's messages in the renderer's format (``{"type": "video", "video": path, ...}`` parts).

    Raises:
        RequestError: media for a text-only model, a URL outside the allowed
            paths, a malformed tool call.
    """
    media_settings = {k: v for k, v in (request.mm_processor_kwargs or {}).items() if k in _MEDIA_KEYS}
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(request.messages):
        where = f"messages[{i}]"
        role = {"developer": "system", "tool": "user"}.get(msg.role, msg.role)
        parts: list[dict[str, Any]] = []
        content = msg.content if msg.content is not None else ""
        for j, part in enumerate([TextPart(type="text", text=content)] if isinstance(content, str) else content):
            pwhere = f"{where}.content[{j}]"
            if isinstance(part, TextPart):
                parts.append({"type": "text", "text": part.text})
                continue
            if not multimodal:
                raise RequestError(f"{pwhere}: the served model is text-only and cannot take {part.type} parts; "
                                   "send text, or serve a vision-language model", param=pwhere)
            if isinstance(part, ImagePart):
                parts.append({"type": "image", "image": resolve(part.image_url.url, pwhere)})
            else:
                extra = {k: v for k, v in (part.video_url.model_extra or {}).items() if k in _MEDIA_KEYS}
                parts.append({"type": "video", "video": resolve(part.video_url.url, pwhere), **media_settings, **extra})
        for k, call in enumerate(msg.tool_calls or []):
            parts.append({"type": "text", "text": _tool_call_text(call, f"{where}.tool_calls[{k}]")})
        if msg.role == "tool":
            body = "".join(p["text"] for p in parts if p["type"] == "text")
            parts = [{"type": "text", "text": f'<tool_response name="{msg.name or "tool"}">{body}</tool_response>'}]
        if not parts:
            parts = [{"type": "text", "text": ""}]
        out.append({"role": role, "content": parts})
    return out


def prompt_chars(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> int:
    """Characters of text the prompt will hold (text parts and tool schemas), counted without tokenising."""
    n = sum(len(p.get("text", "")) for m in messages for p in m["content"] if p.get("type") == "text")
    return n + (len(json.dumps(tools)) if tools else 0)


# --------------------------------------------------------------------------- #
# Model output -> response
# --------------------------------------------------------------------------- #

_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.S)


def split_tool_calls(text: str, tools: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    """``<tool_call>`` blocks naming a known tool become OpenAI ``tool_calls`` (as vLLM's hermes parser does).

    Blocks that are not JSON or name no known tool stay in the content, so the
    client's own parser can tell the model what was wrong.
    """
    known = {schema_function(t).get("name") for t in tools}
    calls, kept = [], text
    for match in _CALL.finditer(text):
        try:
            obj = json.loads(match.group(1))
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict) or obj.get("name") not in known:
            continue
        args = obj.get("arguments", {})
        calls.append({
            "id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
            "function": {"name": obj["name"], "arguments": json.dumps(args if isinstance(args, dict) else {})},
        })
        kept = kept.replace(match.group(0), "", 1)
    content = kept.strip() or None if calls else text
    return content, calls


def usage_body(usage: Any) -> dict[str, Any]:
    """OpenAI ``usage`` from a SessionUsage (``cached_tokens``: what the session's cache already held)."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.generated_tokens,
        "total_tokens": usage.prompt_tokens + usage.generated_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.reused_tokens + usage.prefix_loaded_tokens},
    }


def timings_body(usage: Any) -> dict[str, Any]:
    """llama.cpp's extension: where the time went (the prefill is what the cache saves)."""
    return {"prefilled_tokens": usage.prefilled_tokens, "prefill_s": round(usage.prefill_s, 4),
            "total_s": round(usage.latency_s, 4)}


def logprob_entry(tokenizer: Any, token_id: int, logprob: float, top: list[tuple[int, float]] | None) -> dict[str, Any]:
    """One element of ``choices[0].logprobs.content`` (OpenAI's shape: token, logprob, bytes, top_logprobs)."""
    def one(i: int, lp: float) -> dict[str, Any]:
        text = tokenizer.decode([i])
        return {"token": text, "logprob": lp, "bytes": list(text.encode("utf-8"))}

    return {**one(token_id, logprob), "top_logprobs": [one(i, lp) for i, lp in (top or [])]}


def chat_response(
    model: str, text: str | None, calls: list[dict[str, Any]], finish: str, usage: Any,
    logprobs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One ``chat.completion`` object (``usage`` is a SessionUsage)."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:16]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else finish,
                     "logprobs": {"content": logprobs} if logprobs is not None else None}],
        "usage": usage_body(usage),
        "timings": timings_body(usage),
    }


def chat_chunk(completion_id: str, model: str, created: int, delta: dict[str, Any] | None,
               finish: str | None = None, logprobs: list[dict[str, Any]] | None = None,
               usage: Any = None) -> dict[str, Any]:
    """One ``chat.completion.chunk`` (a streamed delta; ``delta=None`` is the usage-only last chunk)."""
    chunk: dict[str, Any] = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                             "model": model, "choices": []}
    if delta is not None:
        chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish,
                             "logprobs": {"content": logprobs} if logprobs is not None else None}]
    if usage is not None:
        chunk["usage"] = usage_body(usage)
    return chunk


def error_body(message: str, code: str = "invalid_request_error", param: str | None = None) -> dict[str, Any]:
    """The OpenAI error object, which every client library knows how to read."""
    return {"error": {"message": message, "type": code, "param": param, "code": code}}
