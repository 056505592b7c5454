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
    may_be_cooling      (what `bench` set)                        whether to ask the Router at all
    active_cooldowns    router.health().cooldowns.get_active_...  (sync and async)
    full_pick           router.select(group, {_excluded_deployment_ids, _target_order})
                                                                  was async_get_available_deployment
    strategy_groups     Router(routing_groups=[...])              a strategy per model group
    strategy_pick       the group's selector (router._selectors)  what the Router's selection asks it
    feed_strategy       the group's selector                      what LiteLLM's callbacks tell it
    carry_strategy_state  the Router's routing cache, key by key  latency, in-flight, tpm/rpm
    retire              router.retire()                           was Router.discard
    per_call_kwargs     litellm.types.utils.all_litellm_params    the kwargs acompletion honours
    lean_router_build   router_rust.surface.registry's            two per-deployment costs of
                        register_deployment_pricing, _round_trips a Router build (below)

Everything here is called off the import path of `turnout --help`: LiteLLM is imported lazily.
(LiteLLM up to 1.102 loaded tiktoken's cl100k_base at import, ~30 MB that Turnout released by
patching two module globals; since 1.110 it loads the tokenizer on first use, and
`test_litellm_import_loads_no_tokenizer` keeps it that way.)
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
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

    lean_router_build()
    router: Router = litellm.Router(model_list=model_list, **args)  # type: ignore[attr-defined]
    return router


def add_deployment(router: Router, entry: Mapping[str, Any]) -> None:
    """Add one model-list entry (`model_name`, `litellm_params`, `model_info`); raises when refused."""
    from litellm.router_api import ChangeSet
    from litellm.types.router import Deployment, LiteLLM_Params, ModelInfo

    lean_router_build()
    deployment = Deployment(model_name=entry["model_name"], litellm_params=LiteLLM_Params(**entry["litellm_params"]),
                            model_info=ModelInfo(**entry["model_info"]))
    router.apply(ChangeSet(upsert=[deployment]))


_LEAN: list[bool] = []  # once lean_router_build has run
_EXACT_JSON_TYPES = (str, int, bool, type(None))  # json.loads(json.dumps(v)) == v for every value of these


def lean_router_build() -> None:
    """Take two per-deployment costs out of LiteLLM's Router builds (idempotent).

    LiteLLM 1.110 spends ~4 ms per deployment building a Router (1.3 s for 326), nearly all of
    it in two steps of `router_rust/surface/registry.py`, both measured in bench/RESULTS.md:

    - `register_deployment_pricing` copies each deployment's pricing into `litellm.model_cost`
      under its id. Every write invalidates LiteLLM's lower-cased index of that map (~4,900
      keys), which the next lookup rebuilds: O(deployments x map). Turnout never reads
      LiteLLM's cost map (cost comes from the catalogue and the config's prices), passes no
      prices to the Router, and offers no cost-based strategy, so the step is skipped.
    - `_round_trips` JSON-encodes and decodes each of a deployment's ~290 parameters to check
      it survives JSON; for str, int, bool and None that is always true, so those answer at
      once and every other value still goes through LiteLLM's check.

    Together a 326-deployment build goes from 1.3 s to 0.27 s: the cold start, and every
    refresh's rebuild."""
    if _LEAN:
        return
    from litellm.router_rust.surface import registry

    original = registry._round_trips

    def round_trips(value: object) -> bool:
        return True if type(value) in _EXACT_JSON_TYPES else bool(original(value))

    def skip_pricing(host: object, deployment: object) -> None:
        return None

    registry._round_trips = round_trips
    registry.register_deployment_pricing = skip_pricing
    _LEAN.append(True)


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
    until = time.time() + seconds
    if until > _cooling_until.get(router, 0.0):
        _cooling_until[router] = until


# The end of the last cooldown `bench` set, per Router. Every cooldown of a gateway's Router is
# set by `bench`: the gateway makes the calls itself and passes LiteLLM no deployment metadata,
# so LiteLLM's own failure accounting never cools an entry down.
_cooling_until: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


def may_be_cooling(router: Router, *, now: float | None = None) -> bool:
    """False when no entry of `router` can be in cooldown (the last `bench` has run out): the
    picker then skips asking LiteLLM's cooldown store (~10 us a pick, 7% of a request's CPU)."""
    return _cooling_until.get(router, 0.0) > (time.time() if now is None else now)


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

    None when it has nothing to offer; the Router says so with several exception types.
    least-busy would hold each pick as a 30 s reservation until LiteLLM's own call starts;
    the gateway counts the attempt itself as it starts (`feed_strategy`), so picks hold none."""
    from litellm.router_strategy.least_busy import picks_reserve

    try:
        with picks_reserve(False):
            chosen = await router.select(group, {"_excluded_deployment_ids": excluded, "_target_order": order})
    except Exception:
        return None
    return chosen if isinstance(chosen, dict) and chosen else None


def strategy_group_name(group: str) -> str:
    """The Router routing group that carries `group`'s strategy (one per model group)."""
    return f"turnout:{group}"


def strategy_groups(strategies: Mapping[str, str]) -> list[dict[str, Any]]:
    """`routing_groups` for the Router's constructor: each model group with its own strategy."""
    return [{"group_name": strategy_group_name(group), "models": [group], "routing_strategy": strategy}
            for group, strategy in strategies.items() if strategy != "simple-shuffle"]


def _selector(router: Router, strategy: str, group: str) -> Any:
    """The Router's selector for `group`'s routing group (its `strategy`), or None."""
    return router._selectors.selector_for(strategy, "group", strategy_group_name(group), None)


async def strategy_pick(router: Router, strategy: str, group: str, healthy: list[dict[str, Any]], *,
                        stream: bool) -> dict[str, Any] | None:
    """`group`'s strategy picks among `healthy` (the Router's entries, cooldowns already left out).

    The call the Router's selection makes for a routing group's strategy (`pick_async` in
    router_rust/steps/selection.py), without its passes over the whole model list; `stream`
    makes latency-based routing rank by time to first token. Least-busy holds no reservation:
    the gateway counts the attempt as it starts (`feed_strategy`)."""
    selector = _selector(router, strategy, group)
    if selector is None:
        return None
    if strategy == "latency-based-routing":
        chosen = await selector.async_get_available_deployments(model_group=group, healthy_deployments=healthy,
                                                                request_kwargs={"stream": stream})
    else:
        chosen = await selector.async_get_available_deployments(model_group=group, healthy_deployments=healthy)
    return chosen if isinstance(chosen, dict) and chosen else None


@dataclass(frozen=True, slots=True)
class StrategyEvent:
    """One attempt as a strategy's callbacks would have seen it, had LiteLLM made the call.

    `kind` is "start" (the call goes out), "success" or "failure"; times are epoch seconds.
    `model` is the Router entry's `litellm_params.model`."""

    kind: str
    group: str
    entry_id: str
    model: str
    started: float
    ended: float = 0.0
    first_token: float | None = None
    stream: bool = False
    completion_tokens: int | None = None
    total_tokens: int | None = None
    timeout: bool = False
    rpm: int | None = None


async def feed_strategy(router: Router, strategy: str, event: StrategyEvent) -> None:
    """Record an attempt in the state `group`'s strategy picks by, as LiteLLM's callbacks do.

    The gateway calls most upstreams itself (the OpenAI wire), so LiteLLM's logging never
    sees those calls; each selector gets here what its callbacks would have been given:
    least-busy counts the attempt in flight from start to end, latency-based-routing keeps
    the latency (per completion token when the usage says) and, for streams, the time to
    first token, with its 1000 s penalty for a timeout; usage-based-routing-v2 counts the
    request against the minute's rpm at start and its tokens at success."""
    selector = _selector(router, strategy, event.group)
    if selector is None:
        return
    metadata = {"model_group": event.group, "model_info": {"id": event.entry_id}}
    kwargs: dict[str, Any] = {"litellm_params": {"metadata": metadata, "model_info": {"id": event.entry_id}},
                              "stream": event.stream}
    if strategy == "least-busy":
        if event.kind == "start":
            selector.log_pre_api_call(event.model, None, kwargs)
        else:
            selector.log_success_event(kwargs, None, event.started, event.ended)
    elif strategy == "latency-based-routing":
        if event.kind == "success":
            if event.first_token is not None:
                kwargs["completion_start_time"] = event.first_token
            await selector.async_log_success_event(kwargs, _usage_response(event), event.started, event.ended)
            _prune_latency_minutes(router, event.group, event.entry_id)
        elif event.kind == "failure" and event.timeout:
            from litellm.exceptions import Timeout

            kwargs["exception"] = Timeout(message="timeout", model=event.model, llm_provider="")
            await selector.async_log_failure_event(kwargs, None, event.started, event.ended)
    elif strategy == "usage-based-routing-v2":
        # The sync methods: the async ones queue every increment for a Redis push that
        # never drains when the Router has no Redis.
        if event.kind == "start":
            entry = {"model_info": {"id": event.entry_id}, "litellm_params": {"model": event.model, "rpm": event.rpm}}
            with contextlib.suppress(Exception):  # over its rpm: the pick already knew
                selector.pre_call_check(entry)
        elif event.kind == "success" and event.total_tokens is not None:
            kwargs["standard_logging_object"] = {
                "model_group": event.group, "model_id": event.entry_id, "total_tokens": event.total_tokens,
                "hidden_params": {"litellm_model_name": event.model}}
            selector.log_success_event(kwargs, None, event.started, event.ended)


def _prune_latency_minutes(router: Router, group: str, entry_id: str) -> None:
    """Keep only this minute's rpm/tpm in the entry's latency record.

    LiteLLM adds a `YYYY-MM-DD-HH-MM` key per deployment for every minute it answers and
    never drops one, while the map is read (and formatted for a debug line) on every pick:
    it would grow by 1,440 keys a day per deployment. Its selection reads only this minute's."""
    samples = router.health().store.get_cache(key=f"{group}_map", local_only=True)
    record = samples.get(entry_id) if isinstance(samples, dict) else None
    if not isinstance(record, dict):
        return
    now = datetime.now().strftime("%Y-%m-%d-%H-%M")  # the strategy's own clock and format
    for key in [k for k in record if k[:2] == "20" and k.count("-") == 4 and k != now]:
        del record[key]


def _usage_response(event: StrategyEvent) -> Any:
    """A ModelResponse carrying only the usage: latency-based routing divides by its completion tokens."""
    if event.completion_tokens is None:
        return None
    from litellm import ModelResponse
    from litellm.types.utils import Usage

    total = event.total_tokens if event.total_tokens is not None else event.completion_tokens
    return ModelResponse(usage=Usage(prompt_tokens=max(0, total - event.completion_tokens),
                                     completion_tokens=event.completion_tokens, total_tokens=total))


def carry_strategy_state(old: Router, new: Router, *, strategies: Mapping[str, str],
                         entries: Mapping[str, Sequence[tuple[str, str]]]) -> None:
    """Copy what the strategies learnt from `old`'s routing cache into `new`'s (entry ids are stable).

    `entries`: group -> (entry id, litellm model) of its members. Copied: the latency map of
    each latency-based group, the in-flight counts of least-busy ones, and this minute's
    tpm/rpm counters of usage-based-routing-v2 ones."""
    source, target = old.health().store, new.health().store
    keys: list[tuple[str, float]] = []
    for group, strategy in strategies.items():
        members = entries.get(group, ())
        if strategy == "latency-based-routing":
            selector = _selector(new, strategy, group)
            ttl = getattr(getattr(selector, "routing_args", None), "ttl", 3600.0)
            keys.append((f"{group}_map", float(ttl)))
        elif strategy == "least-busy":
            keys += [(f"{group}_request_count:{eid}", 3600.0) for eid, _ in members]
        elif strategy == "usage-based-routing-v2":
            from litellm.utils import get_utc_datetime

            minute = get_utc_datetime().strftime("%H-%M")
            keys += [(f"{eid}:{model}:{kind}:{minute}", 60.0) for eid, model in members for kind in ("tpm", "rpm")]
    for key, ttl in keys:
        value = source.get_cache(key=key, local_only=True)
        if value is not None:
            target.set_cache(key=key, value=value, local_only=True, ttl=ttl)


def retire(router: Router) -> None:
    """Release the Router's global registrations (callbacks), once it serves no request."""
    router.retire()


def per_call_kwargs() -> frozenset[str]:
    """Every keyword LiteLLM's completion call takes besides the OpenAI request fields."""
    from litellm.types.utils import all_litellm_params

    return frozenset(all_litellm_params)
