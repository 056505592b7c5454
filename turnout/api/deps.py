"""Typed access to what the lifespan built, and the auth dependencies."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from turnout.config import Settings
from turnout.errors import Forbidden, Unauthorized
from turnout.pool.provider_health import PassiveStats
from turnout.routing.engine import Engine
from turnout.routing.free_tier import FreeTierBudget
from turnout.routing.snapshot import SnapshotHolder

if TYPE_CHECKING:
    from turnout.pool.refresh import PoolManager


@dataclass
class AppState:
    settings: Settings
    holder: SnapshotHolder
    engine: Engine
    budget: FreeTierBudget
    manager: PoolManager
    passive: PassiveStats = field(default_factory=PassiveStats)  # our own outcomes (and fed probe results)
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


async def require_client(request: Request, state: State) -> None:
    settings = state.settings
    if settings.auth_required:
        # Anthropic clients (Claude Code listing models) send the key as x-api-key.
        api_key = request.headers.get("x-api-key")
        check_client_key(settings, f"Bearer {api_key}" if api_key else request.headers.get("authorization"))


def check_client_key(settings: Settings, authorization: str | None) -> None:
    """Unauthorized unless the Authorization header carries a client (or the admin) key."""
    token = _bearer(authorization)
    if token is None:
        raise Unauthorized("Missing API key: send 'Authorization: Bearer <key>'.")
    keys = [k.get_secret_value() for k in settings.api_keys]
    if settings.admin_key:
        keys.append(settings.admin_key.get_secret_value())
    if not _matches(token, keys):
        raise Unauthorized("Invalid API key.")


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
AdminAuth = Depends(require_admin)
