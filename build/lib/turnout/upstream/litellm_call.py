"""The translated path: providers that do not speak OpenAI's wire (Anthropic, Bedrock,
Ollama's native API, ...) go through `litellm.acompletion`, one attempt at a time, with
LiteLLM's own retries off so the engine's failover applies the same way on both paths."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from turnout.upstream.failures import AttemptError, Kind, parse_retry_after
from turnout.upstream.openai_wire import Frame


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
            return kind
    return "payment" if getattr(exc, "status_code", None) == 402 else "server_error"


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
    args = {k: v for k, v in body.items() if k not in {"model", "stream"}}
    args.update(params)
    args.update({"stream": stream, "timeout": timeout_s, "num_retries": 0, "max_retries": 0})
    return args
