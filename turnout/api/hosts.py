"""Which `Host` names the gateway answers while it runs without keys.

Keyless mode is for one machine: anything that can reach the port may use it. A browser page
on another site can reach a loopback port too, through DNS rebinding (its own name resolving
to 127.0.0.1): the request then carries that site's name as `Host`. So without keys only
loopback names (and `allowed_hosts`) are served; with keys, the key is the check.
"""

from __future__ import annotations

import ipaddress

from starlette.types import Scope

from turnout.config import Settings


def host_name(value: str) -> str:
    """`example.com:8080` -> `example.com`, `[::1]:8080` -> `::1`; lower-case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    name, _, port = value.rpartition(":")
    return name if name and port.isdigit() else value


def is_loopback_name(name: str) -> bool:
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class HostCheck:
    """Allows a request whose Host is a loopback name or one of `allowed`."""

    __slots__ = ("_allowed", "_seen")

    def __init__(self, allowed: list[str]) -> None:
        self._allowed = frozenset(host_name(name) for name in allowed)
        self._seen: dict[bytes, bool] = {}  # Host value -> served; clients send the same few

    @classmethod
    def for_settings(cls, settings: Settings) -> HostCheck | None:
        """None when the check does not apply: keys are set, or the operator runs open on purpose."""
        if settings.api_keys or settings.auth_disabled:
            return None
        return cls(settings.allowed_hosts)

    def refused(self, scope: Scope) -> str | None:
        """The Host value when it is not served, else None (a request without Host is served)."""
        for key, value in scope["headers"]:
            if key == b"host":
                served = self._seen.get(value)
                if served is None:
                    name = host_name(value.decode("latin-1"))
                    served = is_loopback_name(name) or name in self._allowed
                    if len(self._seen) < SEEN_HOSTS:
                        self._seen[value] = served
                return None if served else value.decode("latin-1")
        return None


SEEN_HOSTS = 64  # Host values remembered; a client sending ever new ones is checked each time
