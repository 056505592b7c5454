"""Every reach into LiteLLM beyond `litellm.acompletion` and its exception classes.

LiteLLM 1.110 moved the Router behind entry points (`registry()`, `settings()`, `health()`,
`select()`, `apply()`, `retire()`); the old attributes still answer but warn. Turnout reads and
writes the Router only through the functions below, so an upgrade that moves one of them breaks
one function and the test of the same name in `tests/upstream/test_litellm_internals.py`, not
the hot path at a distance.

    new_router          litellm.Router(**args)                    the constructor
    add_deployment      router.apply(ChangeSet(upsert=[...]))     was Router.add_deployment
    routing_settings    router.settings()                         was router.routing_strategy & co
    router_entries      router.registry().all()                   was router.model_list
    bench               router.health().cooldowns.add_...         was router.cooldown_cache
    active_cooldowns    router.health().cooldowns.get_active_...  (sync and async)
    full_pick           router.select(group, {_excluded_deployment_ids, _target_order})
                                                                  was async_get_available_deployment
    retire              router.retire()                           was Router.discard
    per_call_kwargs     litellm.types.utils.all_litellm_params    the kwargs acompletion honours

Everything here is called off the import path of `turnout --help`: LiteLLM is imported lazily.
(LiteLLM up to 1.102 loaded tiktoken's cl100k_base at import, ~30 MB that Turnout released by
patching two module globals; since 1.110 it loads the tokenizer on first use, and
`test_litellm_import_loads_no_tokenizer` keeps it that way.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litellm import Router  # type: ignore[attr-defined]

CooldownEntry = tuple[str, Mapping[str, Any]]  # (entry id, {"timestamp", "cooldown_time", ...})


@dataclass(frozen=True, slots=True)
class RoutingSettings:
    """The Router settings the picker's fast path depends on."""

    strategy: str
    pre_call_checks: bool
    health_check_routing: bool
    tag_filtering: bool


def new_router(*, model_list: list[dict[str, Any]], args: Mapping[str, Any]) -> Router:
    import litellm

    router: Router = litellm.Router(model_list=model_list, **args)  # type: ignore[attr-defined]
    return router


def add_deployment(router: Router, entry: Mapping[str, Any]) -> None:
    """Add one model-list entry (`model_name`, `litellm_params`, `model_info`); raises when refused."""
    from litellm.router_api import ChangeSet
    from litellm.types.router import Deployment, LiteLLM_Params, ModelInfo

    deployment = Deployment(model_name=entry["model_name"], litellm_params=LiteLLM_Params(**entry["litellm_params"]),
                            model_info=ModelInfo(**entry["model_info"]))
    router.apply(ChangeSet(upsert=[deployment]))


def routing_settings(router: Router) -> RoutingSettings:
    settings = router.settings()
    return RoutingSettings(strategy=str(settings.routing_strategy),
                           pre_call_checks=bool(settings.enable_pre_call_checks),
                           health_check_routing=bool(settings.enable_health_check_routing),
                           tag_filtering=bool(settings.enable_tag_filtering))


def router_entries(router: Router) -> list[dict[str, Any]]:
    """The Router's own deployment dicts, in configured order (the live list: do not mutate)."""
    entries: list[dict[str, Any]] = router.registry().all()
    return entries


def bench(router: Router, entry_ids: Iterable[str], *, seconds: float, reason: Exception, status: int) -> None:
    """Put Router entries in cooldown for `seconds`: the Router's own selection skips them."""
    cooldowns = router.health().cooldowns
    for entry_id in entry_ids:
        cooldowns.add_deployment_to_cooldown(model_id=entry_id, original_exception=reason, exception_status=status,
                                             cooldown_time=seconds)


def active_cooldowns(router: Router, entry_ids: Sequence[str]) -> list[CooldownEntry]:
    return list(router.health().cooldowns.get_active_cooldowns(model_ids=entry_ids, parent_otel_span=None))


async def active_cooldowns_async(router: Router, entry_ids: Sequence[str]) -> list[CooldownEntry]:
    found = await router.health().cooldowns.async_get_active_cooldowns(model_ids=entry_ids, parent_otel_span=None)
    return list(found)


def cooldown_ends(entries: Iterable[CooldownEntry]) -> dict[str, float]:
    """Entry id -> when its cooldown ends (epoch seconds), from what `active_cooldowns` returns."""
    return {entry_id: float(value["timestamp"]) + float(value["cooldown_time"]) for entry_id, value in entries}


async def full_pick(router: Router, group: str, *, order: int, excluded: list[str]) -> dict[str, Any] | None:
    """The Router's whole selection (strategies, rpm/tpm, pre-call checks) for one order of a group.

    None when it has nothing to offer; the Router says so with several exception types."""
    try:
        chosen = await router.select(group, {"_excluded_deployment_ids": excluded, "_target_order": order})
    except Exception:
        return None
    return chosen if isinstance(chosen, dict) and chosen else None


def retire(router: Router) -> None:
    """Release the Router's global registrations (callbacks), once it serves no request."""
    router.retire()


def per_call_kwargs() -> frozenset[str]:
    """Every keyword LiteLLM's completion call takes besides the OpenAI request fields."""
    from litellm.types.utils import all_litellm_params

    return frozenset(all_litellm_params)
