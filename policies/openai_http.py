"""The HTTP side of the OpenAI-compatible policy: one chat-completions call, retried, with typed errors.

Kept apart from the policy so that what can go wrong on the wire is in one
place and each failure has a message that says what to fix:

* the server cannot be reached (nothing listens at ``base_url``), or it does
  not answer in time: retried with exponential backoff, then
  :class:`ServerUnreachable` / :class:`ServerTimeout`;
* 429 and 5xx (busy, overloaded, crashed): retried, honouring ``Retry-After``,
  then :class:`ServerFailed`;
* 401/403 (a missing or wrong key): :class:`AuthFailed`, not retried;
* 404: :class:`ModelNotFound` naming the models the server does serve, or, if
  the route itself is missing, a hint that ``base_url`` should end in ``/v1``;
* other 4xx: :class:`RequestRejected` with the server's message;
* a 200 whose body is not a chat completion: :class:`MalformedReply`.

All are :class:`~mcr.policies.base.PolicyError`: the graph ends the episode
with stop reason ``policy_error`` and this message, nothing lost.
"""

from __future__ import annotations

import json
import time
from typing import Any

from mcr.policies.base import PolicyError

__all__ = [
    "OpenAIError", "ServerUnreachable", "ServerTimeout", "ServerFailed", "AuthFailed", "ModelNotFound",
    "RequestRejected", "MalformedReply", "ChatClient",
]


class OpenAIError(PolicyError):
    """The chat-completions server could not give a decision."""


class ServerUnreachable(OpenAIError):
    """Nothing answers at the base URL (refused connection, unknown host)."""


class ServerTimeout(OpenAIError):
    """The server did not answer within the timeout, after the retries."""


class ServerFailed(OpenAIError):
    """The server kept answering 429 or 5xx after the retries."""


class AuthFailed(OpenAIError):
    """The server refused the API key (401 or 403)."""


class ModelNotFound(OpenAIError):
    """The server does not serve the model asked for (404)."""


class RequestRejected(OpenAIError):
    """A 4xx other than 401/403/404. ``message`` is the server's own."""

    def __init__(self, message: str, status: int, server_message: str):
        super().__init__(message)
        self.status = status
        self.server_message = server_message


class MalformedReply(OpenAIError):
    """The server's reply is not a chat completion (bad JSON, no choices)."""


def _server_message(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body))
        if isinstance(err, dict):
            return str(err.get("message", err))
        return str(err)
    return str(body)[:300]


class ChatClient:
    """POST ``{base_url}/chat/completions`` with retries and typed errors.

    Args:
        base_url: the server's OpenAI root, e.g. ``http://localhost:8000/v1``.
        api_key: sent as ``Authorization: Bearer``; None sends no header.
        timeout_s: read timeout for one attempt (a long video prefill takes time).
        connect_timeout_s: how long to wait for the connection itself.
        max_retries: extra attempts after the first, for retryable failures.
        backoff_s: the first wait; doubled each retry.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 10.0,
        max_retries: int = 2,
        backoff_s: float = 1.0,
    ):
        import httpx

        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s))
        self.attempts = 0  # attempts of the last call (the retries it needed + 1)

    def close(self) -> None:
        self._http.close()

    def models(self) -> list[str]:
        """The model ids the server lists (empty if it cannot say)."""
        import httpx

        try:
            r = self._http.get(f"{self.base_url}/models")
            return [m["id"] for m in r.json().get("data", [])] if r.status_code == 200 else []
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
            return []

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """One chat completion (the parsed JSON body). Raises an :class:`OpenAIError`."""
        import httpx

        url = f"{self.base_url}/chat/completions"
        last: OpenAIError | None = None
        for attempt in range(self.max_retries + 1):
            self.attempts = attempt + 1
            wait = self.backoff_s * 2**attempt
            try:
                response = self._http.post(url, json=body)
            except httpx.ConnectError as exc:
                last = ServerUnreachable(f"cannot reach the chat-completions server at {self.base_url} ({exc}); "
                                         "is it running? Check the policy's base_url")
            except httpx.TimeoutException:
                last = ServerTimeout(f"the server at {self.base_url} did not answer within {self.timeout_s:.0f} s; "
                                     "raise the policy's timeout_s or check the server's load")
            except httpx.HTTPError as exc:
                last = ServerUnreachable(f"the connection to {self.base_url} failed: {type(exc).__name__}: {exc}")
            else:
                status = response.status_code
                if status == 200:
                    return self._parse(response)
                message = _server_message(response)
                if status in (401, 403):
                    raise AuthFailed(f"the server at {self.base_url} refused the API key (HTTP {status}: {message}); "
                                     "set the environment variable named by the policy's api_key_env")
                if status == 404:
                    raise self._not_found(body.get("model"), message)
                if status != 429 and status < 500:
                    raise RequestRejected(f"the server rejected the request (HTTP {status}): {message}", status, message)
                last = ServerFailed(f"the server at {self.base_url} failed (HTTP {status}: {message})")
                retry_after = response.headers.get("retry-after", "")
                if retry_after.replace(".", "", 1).isdigit():
                    wait = max(wait, float(retry_after))
            if attempt < self.max_retries:
                time.sleep(wait)
        assert last is not None
        raise type(last)(f"{last} (after {self.max_retries + 1} attempts)")

    def _not_found(self, model: str | None, message: str) -> OpenAIError:
        served = self.models()
        if served and model not in served:
            return ModelNotFound(f"the server does not serve model {model!r} ({message}); it serves: "
                                 f"{', '.join(served)}. Set the policy's model to one of them")
        if "model" in message.lower():
            return ModelNotFound(f"the server does not know model {model!r}: {message}")
        return RequestRejected(f"{self.base_url}/chat/completions does not exist (HTTP 404: {message}); "
                               "base_url should be the server's OpenAI root, usually ending in /v1", 404, message)

    def _parse(self, response: Any) -> dict[str, Any]:
        try:
            body = response.json()
        except (ValueError, json.JSONDecodeError):
            raise MalformedReply(f"the server at {self.base_url} answered 200 with a body that is not JSON: "
                                 f"{response.text[:120]!r}") from None
        try:
            message = body["choices"][0]["message"]
            if not isinstance(message, dict):
                raise TypeError("message is not an object")
        except (KeyError, IndexError, TypeError) as exc:
            raise MalformedReply(f"the server's reply is not a chat completion (no choices[0].message: {exc}): "
                                 f"{json.dumps(body)[:160]}") from None
        return body
