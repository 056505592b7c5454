"""OpenRouter's own request fields that choose models, providers or billed extras.

The gateway owns routing: a client's `models` (OpenRouter's fallback list, billed at the
fallback's price), `route` and `preset` would escape the pool, the blocklist,
`pool.allow_paid` and the paid `max_tokens` cap, so they are refused. `plugins` (web search
is billed per result) pass only by an id the operator allows (`pool.allowed_plugins`).
`provider` preferences and `transforms` choose among providers of the same model and pass,
except `provider.allow_fallbacks` (anything but false lets OpenRouter leave the preference)
and a `provider.max_price` above the operator's (`pool.max_price`, clamped in the engine).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from turnout.config import PriceField
from turnout.errors import InvalidRequest

REFUSED = ("models", "route", "preset")
PRICE_FIELDS = frozenset({"prompt", "completion", "request", "image"})


def check_openrouter_fields(body: Mapping[str, Any], *, allowed_plugins: Collection[str]) -> None:
    for name in REFUSED:
        if name in body:
            raise InvalidRequest(
                f"The field '{name}' is not allowed: the gateway decides which models serve a request; "
                "name an alias or a pool model in 'model'.",
                param=name, code="forbidden_field",
            )
    _check_plugins(body.get("plugins"), allowed_plugins)
    _check_provider(body.get("provider"))


def _check_plugins(plugins: Any, allowed: Collection[str]) -> None:
    if plugins is None:
        return
    if not isinstance(plugins, list):
        raise InvalidRequest("'plugins' must be an array of objects with an 'id'.", param="plugins")
    for index, plugin in enumerate(plugins):
        plugin_id = plugin.get("id") if isinstance(plugin, dict) else None
        if not isinstance(plugin_id, str):
            raise InvalidRequest(f"'plugins[{index}]' must be an object with an 'id'.", param=f"plugins[{index}]")
        if plugin_id not in allowed:
            offered = ", ".join(sorted(allowed)) or "none"
            raise InvalidRequest(
                f"The plugin '{plugin_id}' is not enabled on this gateway (enabled: {offered}).",
                param=f"plugins[{index}].id", code="forbidden_field",
            )


def _check_provider(provider: Any) -> None:
    if provider is None:
        return
    if not isinstance(provider, dict):
        raise InvalidRequest("'provider' must be an object.", param="provider")
    if "allow_fallbacks" in provider and provider["allow_fallbacks"] is not False:
        raise InvalidRequest(
            "'provider.allow_fallbacks' may only be false: the gateway does the failover.",
            param="provider.allow_fallbacks", code="forbidden_field",
        )
    price = provider.get("max_price")
    if price is None:
        return
    if not isinstance(price, dict) or not all(
        key in PRICE_FIELDS and isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
        for key, v in price.items()
    ):
        raise InvalidRequest(
            f"'provider.max_price' must be an object of non-negative numbers ({', '.join(sorted(PRICE_FIELDS))}).",
            param="provider.max_price",
        )


def clamp_max_price(body: dict[str, Any], ceiling: Mapping[PriceField, float]) -> None:
    """Send the operator's `max_price`, lowered where the client asked for less (never raised)."""
    provider = body.get("provider")
    provider = dict(provider) if isinstance(provider, dict) else {}
    asked = provider.get("max_price")
    asked = asked if isinstance(asked, dict) else {}
    price = {**asked, **{key: min(float(asked.get(key, cap)), cap) for key, cap in ceiling.items()}}
    provider["max_price"] = price
    body["provider"] = provider
