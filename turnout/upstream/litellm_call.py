"""The translated path: providers that do not speak OpenAI's wire (Anthropic, Bedrock,
Ollama's native API, ...) go through `litellm.acompletion`, one attempt at a time, with
LiteLLM's own retries off so the engine's failover applies the same way on both paths."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

from turnout.upstream.failures import AttemptError, Kind, parse_retry_after
from turnout.upstream.openai_wire import Frame

# The OpenAI chat-completions request fields; on the LiteLLM path nothing else reaches
# `litellm.acompletion`, which reads ~400 keywords of its own (headers, credentials, prompt
# templates, callbacks). `metadata` is left out: LiteLLM reads it for its callbacks.
# `reasoning` (OpenRouter's, written by the Messages and Responses translations) and
# `thinking` (Anthropic's, which LiteLLM maps) are provider fields, not LiteLLM settings.
# tests/security/test_litellm_fields.py checks none of these is a LiteLLM keyword.
OPENAI_CHAT_FIELDS = frozenset(
    {
        "model", "messages", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
        "max_completion_tokens", "max_tokens", "modalities", "n", "parallel_tool_calls", "prediction",
        "presence_penalty", "prompt_cache_key", "reasoning_effort", "response_format", "safety_identifier", "seed",
        "stop", "store", "stream", "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p",
        "user", "verbosity", "reasoning", "thinking",
    }
)


def _exception_kinds() -> tuple[tuple[type[BaseException], Kind], ...]:
    """LiteLLM's exceptions -> failure kinds, most specific first (the first match wins)."""
    from litellm import exceptions as x

    return (
        (x.ContextWindowExceededError, "context_overflow"),
        (x.ContentPolicyViolationError, "content_filter"),
        (x.RateLimitError, "rate_limited"),
        (x.Timeout, "timeout"),
        (x.AuthenticationError, "auth"),
        (x.PermissionDeniedError, "auth"),
        (x.NotFoundError, "unsupported"),
        (x.BadRequestError, "bad_request"),
        (x.APIConnectionError, "connection_error"),
    )


def _kind_for(exc: Exception) -> Kind:
    for exc_type, kind in _exception_kinds():
        if isinstance(exc, exc_type):
            if kind == "connection_error" and not _transport_failed(exc):
                # LiteLLM wraps its own failures (converting an image, building a prompt) in
                # APIConnectionError, raised before any upstream call: the request's content
                # failed, not the deployment, and a client must not be able to bench it.
                return "refused_locally"
            return kind
    return "payment" if getattr(exc, "status_code", None) == 402 else "server_error"


def _transport_failed(exc: BaseException) -> bool:
    """Whether a socket, connect or read failure is among `exc`'s causes."""
    import httpx

    seen: BaseException | None = exc.__cause__ or exc.__context__
    for _ in range(20):
        if seen is None:
            return False
        if isinstance(seen, (OSError, TimeoutError, httpx.TransportError, aiohttp.ClientError)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def to_attempt_error(exc: Exception, *, model: str) -> AttemptError:
    kind = _kind_for(exc)
    status = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    message = str(getattr(exc, "message", "") or type(exc).__name__).strip()
    message = (message.splitlines() or [type(exc).__name__])[0][:300]  # never a traceback
    return AttemptError(
        kind,
        f"{model}: {message}"[:500],
        status=status if isinstance(status, int) else None,
        retry_after=parse_retry_after(headers.get("retry-after") if hasattr(headers, "get") else None),
    )


async def complete(*, params: Mapping[str, Any], body: Mapping[str, Any], timeout_s: float, model: str) -> dict[str, Any]:
    import litellm

    try:
        response = await litellm.acompletion(**_call_args(params, body, timeout_s, stream=False))
    except Exception as exc:  # LiteLLM's exception tree is wide; every branch is classified
        raise to_attempt_error(exc, model=model) from None
    answer: dict[str, Any] = json.loads(response.model_dump_json(exclude_none=False))
    return answer


async def stream(*, params: Mapping[str, Any], body: Mapping[str, Any], timeout_s: float, model: str) -> TranslatedStream:
    import litellm

    try:
        response = await litellm.acompletion(**_call_args(params, body, timeout_s, stream=True))
    except Exception as exc:
        raise to_attempt_error(exc, model=model) from None
    return TranslatedStream(response.__aiter__(), model=model)


class TranslatedStream:
    def __init__(self, chunks: AsyncIterator[Any], *, model: str) -> None:
        self._chunks = chunks
        self._model = model
        self._closing: Any = None
        self.done = False

    async def next(self, timeout_s: float) -> Frame | None:
        import asyncio

        if self.done:
            return None
        try:
            async with asyncio.timeout(timeout_s):
                chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            self.done = True
            return None
        except TimeoutError:
            raise AttemptError("stream_broken", f"{self._model}: stream stalled for {timeout_s:.1f}s") from None
        except Exception as exc:
            raise to_attempt_error(exc, model=self._model) from None
        raw = chunk.model_dump_json(exclude_none=True).encode()
        return Frame(data=json.loads(raw), raw=raw)

    def close(self) -> None:
        aclose = getattr(self._chunks, "aclose", None)
        if aclose is not None:
            import asyncio

            asyncio.ensure_future(aclose())  # noqa: RUF006  # TODO(issue 10): owned close


def _call_args(params: Mapping[str, Any], body: Mapping[str, Any], timeout_s: float, *, stream: bool) -> dict[str, Any]:
    """Only OpenAI request fields from the client: every other keyword is a LiteLLM setting
    (headers, credentials, prompt templates, callbacks) that only the gateway may set."""
    args = {k: v for k, v in body.items() if k in OPENAI_CHAT_FIELDS and k not in {"model", "stream"}}
    args.update(params)
    args.update({"stream": stream, "timeout": timeout_s, "num_retries": 0, "max_retries": 0})
    return args
