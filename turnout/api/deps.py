"""Typed access to what the lifespan built, and the auth dependencies."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from turnout.config import Settings
from turnout.errors import Forbidden, Unauthorized
from turnout.observability.redaction import Redactor
from turnout.pool.provider_health import PassiveStats
from turnout.routing.engine import Engine
from turnout.routing.free_tier import FreeTierBudget
from turnout.routing.snapshot import SnapshotHolder
from turnout.routing.tenants import Caller, Tenancy

if TYPE_CHECKING:
    from turnout.pool.refresh import PoolManager


@dataclass
class AppState:
    settings: Settings
    holder: SnapshotHolder
    engine: Engine
    budget: FreeTierBudget
    manager: PoolManager
    tenancy: Tenancy
    passive: PassiveStats = field(default_factory=PassiveStats)  # our own outcomes (and fed probe results)
    extras: dict[str, Any] = field(default_factory=dict)
    redactor: Redactor = field(default_factory=lambda: Redactor(()))


async def get_state(request: Request) -> AppState:
    return request.app.state.turnout  # type: ignore[no-any-return]


State = Annotated[AppState, Depends(get_state)]


def _bearer(header: str | None) -> str | None:
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _matches(token: str, keys: list[str]) -> bool:
    return _matching(token, keys) is not None


def _matching(token: str, keys: list[str]) -> int | None:
    """The 1-based place of the key that matches; every key is compared, so timing does not reveal which."""
    found = None
    for place, key in enumerate(keys, start=1):
        if hmac.compare_digest(token.encode(), key.encode()):
            found = place
    return found


async def require_client(request: Request, state: State) -> Caller:
    # Anthropic clients (Claude Code listing models) send the key as x-api-key.
    api_key = request.headers.get("x-api-key")
    caller = identify(state, f"Bearer {api_key}" if api_key else request.headers.get("authorization"))
    request.state.key_name = caller.key  # for the request's log line (turnout.api.gateway)
    return caller


def identify(state: AppState, authorization: str | None) -> Caller:
    """Which key the Authorization header carries (a client key or the admin key); Unauthorized if none."""
    return state.tenancy.keys.identify(_bearer(authorization))


async def require_admin(request: Request, state: State) -> None:
    settings = state.settings
    if settings.admin_key is None:  # with or without client keys: admin routes are never open
        raise Forbidden("Admin routes are disabled: set TURNOUT_ADMIN_KEY to use them.")
    token = _bearer(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized("Missing admin key: send 'Authorization: Bearer <admin key>'.")
    if not _matches(token, [settings.admin_key.get_secret_value()]):
        raise Unauthorized("Invalid admin key.")


ClientAuth = Depends(require_client)
ClientCaller = Annotated[Caller, ClientAuth]  # the same dependency: solved once per request
AdminAuth = Depends(require_admin)
