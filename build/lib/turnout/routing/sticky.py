"""Sticky sessions: a conversation's later turns go to the deployment that answered its first.

Keeping a conversation on one deployment keeps the upstream's prompt cache warm and its
tool-calling behaviour consistent. The engine asks `open` at the start of a walk (which
deployment the session is pinned to, if any), prefers that deployment while it is fit,
untried, not cooling down and still in the group's current tier, and calls `settle` with the
deployment that answered: the result is `pinned` (the pin held), `new` (no pin yet) or
`moved` (the pinned one failed, cooled down, stopped fitting or left the pool, and the
conversation is re-pinned to the one that answered).

The session key, in order: the `X-Turnout-Session` header, Claude Code's
`X-Claude-Code-Session-Id`, Codex's `session_id` header, the body's `prompt_cache_key`, its
`user` (Anthropic's `metadata.user_id` arrives here as `user`), else a hash of the system
prompt and the first user message. Pins live in a `PinStore`: in process by default
(bounded, with a TTL); a shared store plugs in behind the same three calls.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from turnout.config import SessionSettings, Settings
from turnout.encoding import dumps

PinResult = Literal["pinned", "new", "moved"]
PIN_RESULTS: tuple[PinResult, ...] = ("pinned", "new", "moved")
SESSION_HEADERS = (b"x-turnout-session", b"x-claude-code-session-id", b"session_id", b"session-id")
_BODY_KEYS = ("prompt_cache_key", "user")
_MAX_KEY = 256
HeaderGetter = Callable[[bytes], str | None]
KeySource = Callable[[], str | None]


class PinStore(Protocol):
    """Where pins live: session key -> deployment id, each with a time to live."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, deployment_id: str, ttl_s: float) -> None: ...

    async def delete(self, key: str) -> None: ...


class InProcessPins:
    """Pins in this process: least recently used first out beyond `max_entries`, expired after their TTL."""

    def __init__(self, *, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._max = max_entries
        self._clock = clock
        self._pins: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pins)

    async def get(self, key: str) -> str | None:
        found = self._pins.get(key)
        if found is None:
            return None
        if found[1] <= self._clock():
            del self._pins[key]
            return None
        self._pins.move_to_end(key)
        return found[0]

    async def set(self, key: str, deployment_id: str, ttl_s: float) -> None:
        self._pins[key] = (deployment_id, self._clock() + ttl_s)
        self._pins.move_to_end(key)
        while len(self._pins) > self._max:
            self._pins.popitem(last=False)

    async def delete(self, key: str) -> None:
        self._pins.pop(key, None)


@dataclass(slots=True)
class Pin:
    """One walk's view of its session: the store key and the deployment it was pinned to."""

    key: str
    deployment_id: str | None


def session_key(headers: HeaderGetter, body: Mapping[str, Any]) -> str:
    """The conversation's identity (see the module docstring for the order)."""
    for name in SESSION_HEADERS:
        value = headers(name)
        if value:
            return "h:" + value[:_MAX_KEY]
    for field in _BODY_KEYS:
        found = body.get(field)
        if isinstance(found, str) and found:
            return "b:" + found[:_MAX_KEY]
    return "c:" + _conversation_hash(body.get("messages"))


def _conversation_hash(messages: Any) -> str:
    """The system prompt and the first user message: the same for every turn of one conversation."""
    system: Any = None
    first: Any = None
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if system is None and role in {"system", "developer"}:
            system = message.get("content")
        elif role == "user":
            first = message.get("content")
            break
    return hashlib.blake2b(dumps([system, first]), digest_size=16).hexdigest()


class StickySessions:
    """Which groups pin, the pin store, and the count of each result."""

    def __init__(self, *, settings: Settings, store: PinStore,
                 on_result: Callable[[PinResult], None] | None = None) -> None:
        config: SessionSettings = settings.sessions
        self._ttl_s = config.ttl_s
        self._groups = frozenset(
            [name for name, spec in settings.aliases.items() if spec.sticky]
            + [d.name for d in settings.deployments if d.sticky]
        ) if config.enabled else frozenset()
        self._store = store
        self._on_result = on_result or (lambda result: None)

    def applies(self, group: str) -> bool:
        return group in self._groups

    async def open(self, group: str, source: KeySource | None) -> Pin | None:
        if source is None or group not in self._groups:
            return None
        key = source()
        if key is None:
            return None
        key = f"{group}\x00{key}"
        return Pin(key=key, deployment_id=await self._store.get(key))

    async def settle(self, pin: Pin | None, deployment_id: str) -> PinResult | None:
        """The deployment that answered: keep or move the pin, and say which."""
        if pin is None:
            return None
        result: PinResult = "new" if pin.deployment_id is None else (
            "pinned" if pin.deployment_id == deployment_id else "moved")
        await self._store.set(pin.key, deployment_id, self._ttl_s)
        self._on_result(result)
        return result
