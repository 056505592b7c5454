"""POST /v1/images/generations: OpenAI's image API over the `images` alias.

OpenRouter generates images through chat completions (`modalities: ["image", "text"]`, the
picture in `choices[0].message.images[].image_url.url` as a `data:` URL). This route asks
the engine exactly that — same walk, failover, cooldowns and free-quota rules as chat — and
answers in OpenAI's shape::

    {"created": epoch s, "data": [{"b64_json": "..."} | {"url": "data:image/png;base64,..."},
                                   ... each with "revised_prompt": the model's text or null],
     "usage": {"input_tokens", "output_tokens", "total_tokens"}}

`response_format` "b64_json" (the default, as OpenAI's gpt-image models) returns the base64
bytes; "url" returns the upstream's URL, which for OpenRouter is a `data:` URL: the gateway
stores nothing, so there is no http(s) link to give out. `n` images are `n` calls, in
parallel. `size` ("1024x1024", "1792x1024", ...) becomes OpenRouter's
`image_config.aspect_ratio` when the ratio is one it knows; `auto` or no size leaves the
model's default.

One HTTP request is one record, as a chat request is: the gateway (`turnout.api.gateway`)
opens its meter (`api="images"`) and its `RequestLog` line; the `n` calls' attempts all go
in that one line, which this route finishes with the answer (summed usage and cost).
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from turnout.api.deps import ClientCaller, State
from turnout.errors import AttemptRecord, InvalidRequest, NotReady, UpstreamFailed
from turnout.observability.request_log import RequestLog
from turnout.observability.usage import usage_cost
from turnout.routing.engine import Outcome
from turnout.routing.request import parse_chat_request

router = APIRouter()
IMAGES_PATH = "/v1/images/generations"
IMAGES_ALIAS = "images"
ASPECT_RATIOS = frozenset({"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"})
_NAMED_SIZES = {"1792x1024": "16:9", "1024x1792": "9:16", "1536x1024": "3:2", "1024x1536": "2:3"}


class ImageRequest(BaseModel):
    """OpenAI's image-generation body; fields it has and we do not use (quality, style,
    background, moderation, output_format...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    prompt: str = Field(min_length=1, max_length=32_000)
    model: str = Field(IMAGES_ALIAS, min_length=1)
    n: int = Field(1, ge=1, le=10)
    size: str | None = None
    response_format: Literal["b64_json", "url"] = "b64_json"
    user: str | None = None


@router.post(IMAGES_PATH, summary="Generate images (OpenAI's shape) with the `images` alias")
async def generate(request: ImageRequest, state: State, caller: ClientCaller, http: Request) -> JSONResponse:
    log_line: RequestLog = http.state.request_log
    log_line.key = caller.key
    log_line.begin(requested=request.model, stream=False, calls=request.n)
    snapshot = state.holder.current
    if snapshot is None:
        raise NotReady("No routable pool yet; see GET /readyz.")
    chat = parse_chat_request(_chat_body(request), max_messages=1)
    # A named key's models, rpm and daily budget hold here as on chat: one request, n images.
    await state.tenancy.admit(caller, snapshot.resolve(request.model))
    # Each call walks with its own list of attempts (the walk reads it: backoff, the attempts
    # header, the error's); the request's record gets them all, whatever ended the request.
    calls: list[list[AttemptRecord]] = [[] for _ in range(request.n)]
    try:
        outcomes = await asyncio.gather(*(state.engine.complete(chat, snapshot, attempts=attempts)
                                          for attempts in calls))
    finally:
        for attempts in calls:
            log_line.attempts.extend(attempts)
    data = [_image(outcome, response_format=request.response_format) for outcome in outcomes]
    usage = [outcome.value.get("usage") or {} for outcome in outcomes]
    log_line.finished_parallel(list(zip(outcomes, usage, strict=True)), status=200)
    tenant = caller.tenant_for(None)
    for outcome, used in zip(outcomes, usage, strict=True):  # each image is spent on its own model
        cost = usage_cost(used, outcome.deployment)
        await state.tenancy.record(caller, tenant, model=outcome.deployment.model, usage=used,
                                   cost_usd=None if cost is None else cost.usd)
    prompt_tokens = sum(int(u.get("prompt_tokens") or 0) for u in usage)
    output_tokens = sum(int(u.get("completion_tokens") or 0) for u in usage)
    last = outcomes[-1]
    return JSONResponse(
        {"created": int(time.time()), "data": data,
         "usage": {"input_tokens": prompt_tokens, "output_tokens": output_tokens,
                   "total_tokens": prompt_tokens + output_tokens}},
        headers={"x-turnout-model": last.deployment.model, "x-turnout-group": last.group,
                 "x-turnout-attempts": str(sum(len(o.attempts) for o in outcomes))},
    )


def _chat_body(request: ImageRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"model": request.model, "modalities": ["image", "text"],
                            "messages": [{"role": "user", "content": request.prompt}]}
    ratio = aspect_ratio(request.size)
    if ratio is not None:
        body["image_config"] = {"aspect_ratio": ratio}
    if request.user:
        body["user"] = request.user
    return body


def aspect_ratio(size: str | None) -> str | None:
    """OpenAI's `size` as OpenRouter's `aspect_ratio`; None for no size or `auto`."""
    if size is None or size == "auto":
        return None
    if size in _NAMED_SIZES:
        return _NAMED_SIZES[size]
    width, sep, height = size.partition("x")
    if not (sep and width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise InvalidRequest(f"'size' must be 'WIDTHxHEIGHT' (e.g. 1024x1024) or 'auto'; got {size!r}.", param="size")
    divisor = math.gcd(int(width), int(height))
    ratio = f"{int(width) // divisor}:{int(height) // divisor}"
    if ratio not in ASPECT_RATIOS:
        raise InvalidRequest(f"'size' {size} is a {ratio} picture; the image models take "
                             f"{', '.join(sorted(ASPECT_RATIOS))}.", param="size")
    return ratio


def _image(outcome: Outcome[dict[str, Any]], *, response_format: str) -> dict[str, Any]:
    choices = outcome.value.get("choices") or [{}]
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    message = message if isinstance(message, dict) else {}
    images = message.get("images") or []
    url = next((part.get("image_url", {}).get("url") for part in images
                if isinstance(part, dict) and isinstance(part.get("image_url"), dict)), None)
    if not isinstance(url, str) or not url:
        raise UpstreamFailed(f"{outcome.deployment.model} answered without an image.", status=502, code="no_image")
    text = message.get("content") if isinstance(message.get("content"), str) else None
    if response_format == "url":
        return {"url": url, "revised_prompt": text}
    _, sep, payload = url.partition(";base64,")
    if not (url.startswith("data:") and sep):
        raise UpstreamFailed(f"{outcome.deployment.model} answered with a link, not image bytes; ask for "
                             "response_format 'url'.", status=502, code="no_image")
    return {"b64_json": payload, "revised_prompt": text}
