"""Mid-stream continuation: a stream that breaks after content reached the client goes on, in
the same client stream, from the next deployment of the same walk.

`ResumingStream` wraps every stream the engine opens and is what the chat handler reads.
While nothing goes wrong it only keeps a reference to each frame's raw bytes (what the
client has is read from them only when a stream breaks: no parsing on the plain path) and
holds tool-call deltas back until the call's choice finishes, so a break inside a call's
arguments never leaves the client with half a call.

When the upstream breaks (cut, stalled past `timeouts.stream_idle_s`, an error frame, an
end without `[DONE]`):

- If a `finish_reason` already reached the client, the answer is complete: the stream ends
  as a success (the client gets `[DONE]`), whatever the upstream failed to send after it.
- Otherwise the leg is recorded as a failed attempt (metrics, log, passive health, cooldown),
  its deployment is excluded from the rest of the request, and the walk runs again (tried
  deployments excluded, tiers, fallbacks, hedging, the request deadline) for a request that
  continues the answer: the messages plus an assistant prefill of exactly what the client
  has (`splice.Seam`, mode `prefill`), or, for a deployment that refuses prefill (a 400
  naming it, `streams.no_prefill`, or learned earlier), the request as it came (`restart`),
  whose answer must begin with what the client has. Nothing delivered yet: the same request
  again (`retry`).
- Frames of a continuation get the first leg's `id` and `created`, lose the repeated
  `role`, and keep their own `model` (the model that wrote them). The usage chunk of the last
  leg carries the usage of every leg (`sum_usage`; a leg that broke before its usage chunk
  is estimated: one token per content frame, the prompt from its size).
- At most `streams.max_resumes` continuations; after that, or when no deployment can
  continue, or when a restart diverges, the stream ends with one error frame and `[DONE]`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, NoReturn, Protocol

from turnout.config import StreamSettings
from turnout.encoding import dumps
from turnout.errors import GatewayError
from turnout.pool.model import Deployment
from turnout.routing.request import ChatRequest
from turnout.routing.splice import Diverged, Mode, Seam, prefill_text
from turnout.upstream.failures import AttemptError
from turnout.upstream.openai_wire import Frame

_REASONING_KEYS = ("reasoning", "reasoning_content", "reasoning_details")


@dataclass(frozen=True, slots=True)
class StreamLeg:
    """One upstream stream that fed the client stream: who, how it joined, how much it sent."""

    model: str
    deployment: str
    mode: str  # "first", "prefill", "restart" or "retry"
    chars: int = 0  # content characters it delivered

    def as_json(self) -> dict[str, Any]:
        return {"model": self.model, "deployment": self.deployment, "mode": self.mode, "chars": self.chars}


@dataclass(frozen=True, slots=True)
class Opened:
    """A stream the walk opened: its deployment and group, the source and its first frame."""

    deployment: Deployment
    group: str
    source: Any
    first: Frame


class StreamWalk(Protocol):
    """What a resuming stream asks of the walk that opened it (the engine implements it)."""

    async def resume(self, request_for: Callable[[Deployment], ChatRequest]) -> Opened: ...

    def broke(self, deployment: Deployment, group: str, error: AttemptError, latency_s: float) -> None: ...

    def resumed(self, outcome: str) -> None: ...

    def malformed(self, deployment: Deployment, count: int) -> None: ...

    def refused_prefill(self) -> set[str]: ...


class PrefillMemory:
    """Deployments that take no assistant prefill: configured patterns, and refusals seen."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self._patterns = tuple(patterns)
        self._refused: set[str] = set()  # bounded by the deployments the pool ever had

    def refuses(self, deployment: Deployment) -> bool:
        if deployment.id in self._refused:
            return True
        names = (deployment.model, deployment.upstream_model)
        return any(fnmatchcase(name, pattern) for pattern in self._patterns for name in names)

    def learn(self, deployment_ids: Iterable[str]) -> None:
        self._refused.update(deployment_ids)


def continuation_mode(body: Mapping[str, Any]) -> Mode | None:
    """How a broken answer to `body` may be continued: None when it may not at all.

    Several choices cannot share one prefill; constrained output (a JSON format, a forced
    tool call) may not start from a prefill on every provider, so it is restarted instead.
    """
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        return None
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping) and response_format.get("type") not in (None, "text"):
        return "restart"
    tool_choice = body.get("tool_choice")
    if tool_choice == "required" or isinstance(tool_choice, Mapping):
        return "restart"
    return "prefill"


def prefill_request(request: ChatRequest, delivered: str, *, tokens: int) -> ChatRequest | None:
    """`request` continued from `delivered`: an assistant prefill, output limits lowered by `tokens`.

    None when the output limit is spent, or the request already ends in an assistant message
    whose content is not plain text.
    """
    body = dict(request.body)
    messages = list(body.get("messages") or ())
    last = messages[-1] if messages else None
    if isinstance(last, Mapping) and last.get("role") == "assistant" and not last.get("tool_calls"):
        own = last.get("content") or ""
        if not isinstance(own, str):
            return None
        messages[-1] = {**last, "content": prefill_text(own + delivered)}
    else:
        messages.append({"role": "assistant", "content": prefill_text(delivered)})
    body["messages"] = messages
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            if value - tokens < 1:
                return None
            body[key] = value - tokens
    left = None if request.max_tokens is None else request.max_tokens - tokens
    return dataclasses.replace(request, body=body, max_tokens=left)


def sum_usage(usages: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Usage blocks added up: numbers summed (nested details too), anything else the last seen."""
    total: dict[str, Any] = {}
    for usage in usages:
        for key, value in usage.items():
            if isinstance(value, bool) or value is None:
                total.setdefault(key, value)
            elif isinstance(value, (int, float)):
                before = total.get(key)
                total[key] = value + before if isinstance(before, (int, float)) and not isinstance(before, bool) \
                    else value
            elif isinstance(value, Mapping):
                before = total.get(key)
                total[key] = sum_usage([before, value] if isinstance(before, Mapping) else [value])
            else:
                total[key] = value
    return total


class Delivered:
    """What reached the client: the frames' raw bytes, read only when the text is needed."""

    __slots__ = ("_read", "content_frames", "finished", "frames", "identity", "reasoning", "text")

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.text = ""
        self.content_frames = 0
        self.finished = False  # a finish_reason reached the client
        self.reasoning = False
        self.identity: dict[str, Any] = {}  # the first frame's id and created
        self._read = 0

    def read(self) -> None:
        parts = [self.text]
        for raw in self.frames[self._read:]:
            data = _loads(raw)
            if not isinstance(data, dict):
                continue
            if not self.identity:
                self.identity = {k: data[k] for k in ("id", "created") if k in data}
            for choice in data.get("choices") or ():
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta")
                if not isinstance(delta, dict):
                    delta = {}
                content = delta.get("content")
                if isinstance(content, str) and content:
                    parts.append(content)
                    self.content_frames += 1
                if any(delta.get(key) for key in _REASONING_KEYS):
                    self.reasoning = True
                if choice.get("finish_reason"):
                    self.finished = True
        self._read = len(self.frames)
        self.text = "".join(parts)


class ResumingStream:
    """The client's view of an upstream stream: frames in, continuation across breaks."""

    def __init__(self, *, walk: StreamWalk, opened: Opened, request: ChatRequest, settings: StreamSettings,
                 memory: PrefillMemory) -> None:
        self._walk = walk
        self._request = request
        self._settings = settings
        self._memory = memory
        self._hold_tools = settings.hold_tool_calls
        self._delivered = Delivered()
        self._keep = self._delivered.frames.append
        self._seam: Seam | None = None  # None on the first leg: frames pass untouched
        self._held: list[Frame] = []
        self._queue: deque[Frame] = deque()
        self._ended = False
        self._resumes = 0
        self._earlier_usage: list[Mapping[str, Any]] = []
        self._leg_start = (0, 0)  # (content chars, content frames) delivered before this leg
        self.unterminated: str | None = None  # how a finished stream ended without [DONE]
        self.legs = [StreamLeg(model=opened.deployment.model, deployment=opened.deployment.id, mode="first")]
        self._start_leg(opened)
        self._admit(opened.first)
        self._plain = False  # until the first frame is read

    # -- what the chat handler calls ------------------------------------------------------

    def ready(self) -> bool:
        return bool(self._queue) or (not self._ended and self._ready())

    async def next(self, timeout_s: float) -> Frame | None:
        if self._plain:  # the first leg, nothing held or queued: one append per frame
            try:
                frame: Frame | None = await self._source.next(timeout_s)
            except AttemptError as error:
                await self._broken(error)
                return await self._next(timeout_s)
            if frame is not None and b'"tool_calls"' not in frame.raw:
                self._keep(frame.raw)
                return frame
            if frame is None:
                self._end()
            else:
                self._admit(frame)
        return await self._next(timeout_s)

    async def _next(self, timeout_s: float) -> Frame | None:
        while not self._queue and not self._ended:
            try:
                frame = await self._source.next(timeout_s)
            except AttemptError as error:
                await self._broken(error)
                continue
            if frame is None:
                self._end()
            else:
                self._admit(frame)
        self._plain = self._seam is None and not self._held and len(self._queue) <= 1 and not self._ended
        return self._queue.popleft() if self._queue else None

    def trailer(self) -> bytes:
        """An SSE comment naming every leg, sent before `[DONE]` when more than one model answered."""
        if len(self.legs) < 2 and self.unterminated is None:
            return b""
        self._settle_leg()
        body = {"legs": [leg.as_json() for leg in self.legs], "resumes": self._resumes}
        if self.unterminated is not None:
            body["unterminated"] = self.unterminated
        return b": x-turnout-legs " + dumps(body) + b"\n\n"

    def close(self) -> None:
        self._source.close()

    # -- frames ---------------------------------------------------------------------------

    def _admit(self, frame: Frame) -> None:
        data = frame.data if frame.data is not None else _loads(frame.raw)
        if not isinstance(data, dict):
            self._deliver(frame)
            return
        if self._seam is not None:
            try:
                spliced = self._spliced(data)
            except Diverged as exc:
                self._diverged(exc)
            if spliced is None:
                return
            data = spliced
            frame = Frame(data=data, raw=dumps(data))
        if self._held or (self._hold_tools and _calls_tools(data)):
            self._held.append(frame)
            if _finishes(data):
                self._release()
            return
        self._deliver(frame)

    def _deliver(self, frame: Frame) -> None:
        self._delivered.frames.append(frame.raw)
        self._queue.append(frame)

    def _release(self) -> None:
        for frame in self._held:
            self._deliver(frame)
        self._held.clear()

    def _spliced(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """A continuation frame as the client gets it, or None when nothing of it is left."""
        seam = self._seam
        assert seam is not None
        data = {**data, **self._delivered.identity}
        usage = data.get("usage")
        if isinstance(usage, Mapping):
            data["usage"] = sum_usage([*self._earlier_usage, usage])
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            return data if data.get("usage") else None
        kept = []
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            delta = dict(choice.get("delta") or {})
            delta.pop("role", None)
            content = delta.get("content")
            if isinstance(content, str) and content:
                delta["content"] = seam.feed(content)
            if choice.get("finish_reason"):
                delta["content"] = seam.finish() + (delta.get("content") or "")
            if self._delivered.text:
                for key in _REASONING_KEYS:  # the client is past reasoning; a new leg's would repeat it
                    delta.pop(key, None)
            if delta.get("content") or choice.get("finish_reason") or any(
                    value for key, value in delta.items() if key != "content"):
                kept.append({**choice, "delta": delta})
        if not kept and not data.get("usage"):
            return None
        data["choices"] = kept
        return data

    # -- legs -----------------------------------------------------------------------------

    def _start_leg(self, opened: Opened) -> None:
        self._source = opened.source
        self._ready: Callable[[], bool] = getattr(opened.source, "ready", _never)
        self._deployment = opened.deployment
        self._group = opened.group
        self._leg_at = time.monotonic()

    def _end(self) -> None:
        """The upstream said [DONE]."""
        self._count_malformed()
        if self._seam is not None and not self._seam.settled:
            try:
                text = self._seam.finish()
            except Diverged as exc:
                self._diverged(exc)
            if text:
                self._deliver(Frame(data=None, raw=dumps(self._text_frame(text))))
        self._release()
        self._ended = True

    def _settle_leg(self) -> None:
        delivered = self._delivered
        delivered.read()
        leg = self.legs[-1]
        self.legs[-1] = dataclasses.replace(leg, chars=len(delivered.text) - self._leg_start[0])

    async def _broken(self, error: AttemptError) -> None:
        delivered = self._delivered
        delivered.read()
        self._count_malformed()
        self._source.close()
        if delivered.finished:
            # The answer is whole; the upstream only failed to end the stream properly.
            self.unterminated = error.kind
            self._release()
            self._ended = True
            return
        self._walk.broke(self._deployment, self._group, error, time.monotonic() - self._leg_at)
        self._held.clear()  # half a tool call never reaches the client
        self._settle_leg()
        self._earlier_usage.append(self._estimate())
        base = continuation_mode(self._request.body)
        if base is None or self._resumes >= self._settings.max_resumes:
            self._walk.resumed("ineligible" if base is None else "exhausted")
            raise error
        chosen: dict[str, str] = {}
        opened = await self._reopen(error, self._chooser(base, chosen))
        mode = chosen.get(opened.deployment.id, "retry")
        self._resumes += 1
        self._walk.resumed(mode)
        self._leg_start = (len(delivered.text), delivered.content_frames)
        self._seam = Seam(delivered=delivered.text, mode="restart" if mode == "restart" else "prefill")
        self.legs.append(StreamLeg(model=opened.deployment.model, deployment=opened.deployment.id, mode=mode))
        self._start_leg(opened)
        self._admit(opened.first)

    async def _reopen(self, error: AttemptError, request_for: Callable[[Deployment], ChatRequest]) -> Opened:
        try:
            opened = await self._walk.resume(request_for)
        except GatewayError as exc:
            self._walk.resumed("failed")
            raise AttemptError(error.kind, f"{error.message}; no deployment could continue the answer: "
                                           f"{exc.message}", status=error.status) from None
        finally:
            self._memory.learn(self._walk.refused_prefill())
        return opened

    def _chooser(self, base: Mode, chosen: dict[str, str]) -> Callable[[Deployment], ChatRequest]:
        """The request each deployment gets to continue the answer; `chosen` records the mode."""
        text = self._delivered.text
        tokens = self._delivered.content_frames
        prefilled = prefill_request(self._request, text, tokens=tokens) if text and base == "prefill" else None

        def request_for(deployment: Deployment) -> ChatRequest:
            if not text:
                chosen[deployment.id] = "retry"
                return self._request
            refused = self._memory.refuses(deployment) or deployment.id in self._walk.refused_prefill()
            if prefilled is None or refused:
                chosen[deployment.id] = "restart"
                return self._request
            chosen[deployment.id] = "prefill"
            return prefilled

        return request_for

    def _estimate(self) -> dict[str, int]:
        """Usage of a leg that broke before its usage chunk: one token per content frame."""
        chars, frames = self._leg_start
        completion = self._delivered.content_frames - frames
        prompt = self._request.prompt_tokens_estimate + chars // 4
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _diverged(self, exc: Diverged) -> NoReturn:
        self._walk.resumed("diverged")
        self._source.close()
        self._ended = True
        self._held.clear()
        raise AttemptError(
            "stream_broken",
            f"the stream broke after {len(self._delivered.text)} characters and {self._deployment.model}, "
            f"which takes no prefill, restarted with a different answer ({exc}); the answer is incomplete",
        )

    def _count_malformed(self) -> None:
        count = getattr(self._source, "malformed", 0)
        if count:
            self._walk.malformed(self._deployment, count)

    def _text_frame(self, text: str) -> dict[str, Any]:
        choice = {"index": 0, "delta": {"content": text}, "finish_reason": None}
        return {**self._delivered.identity, "object": "chat.completion.chunk", "model": self._deployment.model,
                "choices": [choice]}


def _calls_tools(data: Mapping[str, Any]) -> bool:
    for choice in data.get("choices") or ():
        if isinstance(choice, Mapping):
            delta = choice.get("delta")
            if isinstance(delta, Mapping) and delta.get("tool_calls"):
                return True
    return False


def _finishes(data: Mapping[str, Any]) -> bool:
    return any(isinstance(c, Mapping) and c.get("finish_reason") for c in data.get("choices") or ())


def _never() -> bool:
    return False


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
