"""Typed access to what the lifespan built, and the auth dependencies."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from turnout.config import Settings
from turnout.errors import Forbidden, Unauthorized
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
    extras: dict[str, Any] = field(default_factory=dict)


async def get_state(request: Request) -> AppState:
    return request.app.state.turnout  # type: ignore[no-any-return]


State = Annotated[AppState, Depends(get_state)]


def _bearer(header: str | None) -> str | None:
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _matches(token: str, keys: list[str]) -> bool:
    found = False
    for key in keys:  # compare against every key so timing does not reveal which matched
        found |= hmac.compare_digest(token.encode(), key.encode())
    return found


async def require_client(request: Request, state: State) -> Caller:
    # Anthropic clients (Claude Code listing models) send the key as x-api-key.
    api_key = request.headers.get("x-api-key")
    return identify(state, f"Bearer {api_key}" if api_key else request.headers.get("authorization"))


def identify(state: AppState, authorization: str | None) -> Caller:
    """Which key the Authorization header carries (a client key or the admin key); Unauthorized if none."""
    return state.tenancy.keys.identify(_bearer(authorization))


async def require_admin(request: Request, state: State) -> None:
    settings = state.settings
    if settings.admin_key is None:
        if settings.auth_required:
            raise Forbidden("Admin routes are disabled: set TURNOUT_ADMIN_KEY to use them.")
        return
    token = _bearer(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized("Missing admin key: send 'Authorization: Bearer <admin key>'.")
    if not _matches(token, [settings.admin_key.get_secret_value()]):
        raise Unauthorized("Invalid admin key.")


ClientAuth = Depends(require_client)
ClientCaller = Annotated[Caller, ClientAuth]  # the same dependency: solved once per request
AdminAuth = Depends(require_admin)
