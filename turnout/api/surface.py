"""What differs between the API surfaces served on the one engine (chat, messages, responses).

`turnout.api.chat` runs every surface's request the same way — key, body, request id,
metering, the engine's walk, the stream relay, disconnects — and asks the `Surface` only
what is the API's own: how the key is sent, how the body becomes a chat request, how a chat
completion and chat stream frames are said back, and the shape of an error. Translation
works on chat frames after the engine and the stream relay, so what those do for a chat
stream (failover before the first byte, the idle timeout, error frames) holds for every API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from turnout.api.asgi import RequestHead
from turnout.config import Settings
from turnout.errors import GatewayError
from turnout.routing.request import ChatRequest
from turnout.upstream.openai_wire import Frame

if TYPE_CHECKING:
    from turnout.routing.engine import Outcome


DROPPED_TOOLS_HEADER = b"x-turnout-dropped-tools"


@dataclass(frozen=True, slots=True)
class EdgeRequest:
    """A client request as the engine routes it, with what its surface keeps for the answer."""

    chat: ChatRequest
    headers: tuple[tuple[bytes, bytes], ...] = ()  # added to the response
    notes: Mapping[str, Any] = field(default_factory=dict)  # added to the request's log line
    context: Any = None  # the surface's own (the Responses echo, ...)

    @classmethod
    def translated(cls, chat: ChatRequest, *, dropped: list[str], context: Any = None) -> EdgeRequest:
        """A request translated from another API; tools it could not send upstream are named in a header and the log."""
        if not dropped:
            return cls(chat=chat, context=context)
        return cls(chat=chat, context=context, notes={"dropped_tools": dropped},
                   headers=((DROPPED_TOOLS_HEADER, _header_value(",".join(dropped))),))


def _header_value(text: str) -> bytes:
    """Printable ASCII only: a tool type is the client's text, and a control character in a header
    makes the server refuse the whole response."""
    return "".join(c if " " <= c <= "~" else "?" for c in text).encode("ascii")


class StreamEvents(Protocol):
    """One response stream in the surface's own events, fed chat frames in order."""

    def frame(self, frame: Frame) -> bytes: ...

    def end(self) -> bytes: ...

    def fail(self, message: str, *, type_: str, code: str, request_id: str) -> bytes: ...


class Surface(Protocol):
    api: str  # the `api` label of metrics and log lines
    path: str

    def error_body(self, exc: GatewayError) -> bytes: ...

    def authorization(self, head: RequestHead) -> str | None:
        """The client's key as an `Authorization: Bearer` value (or None)."""
        ...

    def parse(self, body: Any, settings: Settings) -> EdgeRequest: ...

    def answer(self, payload: dict[str, Any], outcome: Outcome[Any], request: EdgeRequest) -> dict[str, Any]: ...

    def events(self, request: EdgeRequest, outcome: Outcome[Any]) -> StreamEvents: ...
