"""The pool: every deployment Turnout may route to, grouped by the names clients call.

A `Pool` is an immutable value. It is built by pure functions (`turnout.pool.selection` from the
catalogue and health, `static_groups` from config), persisted as JSON, and turned into a
LiteLLM Router by `turnout.routing.snapshot`. It never holds a secret: a deployment names
its credential (`credential`), the routing layer resolves it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from turnout.config import AliasSpec, Settings, StaticDeployment
from turnout.pool.pacing import no_pause

DeploymentTier = Literal["free", "paid", "static"]
Wire = Literal["openai", "litellm"]
GroupKind = Literal["alias", "model", "static"]

# Providers whose HTTP API is OpenAI's chat-completions wire: the lean path forwards to them.
OPENAI_WIRE_PROVIDERS = frozenset(
    {"openai", "openrouter", "hosted_vllm", "openai_compatible", "lm_studio", "llamafile", "custom_openai"}
)
OPENROUTER_CREDENTIAL = "openrouter"


@dataclass(frozen=True, slots=True)
class Capabilities:
    tools: bool = False
    vision: bool = False
    json_mode: bool = False
    reasoning: bool = False
    image_output: bool = False  # answers with images (message.images) when asked for modalities [image, text]


@dataclass(frozen=True, slots=True)
class Deployment:
    """One upstream model behind one credential."""

    id: str
    model: str
    provider: str
    upstream_model: str
    wire: Wire
    api_base: str
    credential: str | None
    tier: DeploymentTier
    context_length: int | None = None
    max_output_tokens: int | None = None
    prompt_price: float = 0.0
    completion_price: float = 0.0
    capabilities: Capabilities = field(default_factory=Capabilities)
    rpm: int | None = None
    tpm: int | None = None

    @property
    def litellm_model(self) -> str:
        """The model string LiteLLM's translation layer expects."""
        if self.wire == "openai":
            return f"{self.provider}/{self.upstream_model}"
        return self.upstream_model


@dataclass(frozen=True, slots=True)
class Member:
    deployment_id: str
    rank: int
    weight: int
    order: int = 1
    score: float = 0.0
    health: float | None = None


@dataclass(frozen=True, slots=True)
class Group:
    """A name a client may call, with its ranked members and where it falls back to."""

    name: str
    kind: GroupKind
    members: tuple[Member, ...]
    fallbacks: tuple[str, ...] = ()
    context_window_fallbacks: tuple[str, ...] = ()
    description: str = ""
    content_policy_fallbacks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Pool:
    deployments: Mapping[str, Deployment]
    groups: Mapping[str, Group]
    built_at: float
    source: str
    degraded_reason: str | None = None

    def members_of(self, group: str) -> list[tuple[Member, Deployment]]:
        found = self.groups.get(group)
        if found is None:
            return []
        return [(m, self.deployments[m.deployment_id]) for m in found.members]

    def to_json(self, *, pause: Callable[[], None] = no_pause) -> dict[str, Any]:
        deployments = []
        for dep in self.deployments.values():
            pause()
            deployments.append(asdict(dep))
        return {
            "built_at": self.built_at,
            "source": self.source,
            "degraded_reason": self.degraded_reason,
            "deployments": deployments,
            "groups": [
                {**asdict(g), "members": [asdict(m) for m in g.members]} for g in self.groups.values()
            ],
        }

    @classmethod
    def from_json(cls, data: Any, *, source: str | None = None) -> Pool:
        """The pool `to_json` wrote, every field checked against its type (the file may be
        truncated, hand-edited or from another version); ValueError names what is wrong."""
        from pydantic import TypeAdapter, ValidationError

        if not isinstance(data, Mapping) or "deployments" not in data or "groups" not in data:
            raise ValueError("not a pool: expected an object with 'deployments' and 'groups'")
        def checked(name: str, kind: Any, value: Any) -> Any:
            try:
                return TypeAdapter(kind).validate_python(value)
            except ValidationError as exc:
                first = exc.errors(include_url=False, include_input=False)[0]
                where = ".".join(str(part) for part in (name, *first["loc"]))
                raise ValueError(f"{where}: {first['msg']}") from None

        deployments: list[Deployment] = checked("deployments", list[Deployment], data["deployments"])
        groups: list[Group] = checked("groups", list[Group], data["groups"])
        header: _PoolHeader = checked("pool", _PoolHeader,
                                      {k: data[k] for k in ("built_at", "degraded_reason") if k in data})
        ids = {dep.id for dep in deployments}
        for group in groups:
            for member in group.members:
                if member.deployment_id not in ids:
                    raise ValueError(f"group {group.name!r}: member {member.deployment_id!r} has no deployment")
        return make_pool(
            deployments=deployments,
            groups=groups,
            source=source or str(data.get("source", "persisted")),
            built_at=header.built_at if header.built_at is not None else time.time(),
            degraded_reason=header.degraded_reason,
        )


@dataclass(frozen=True, slots=True)
class _PoolHeader:
    built_at: float | None = None
    degraded_reason: str | None = None


def make_pool(
    *,
    deployments: Any,
    groups: Any,
    source: str,
    built_at: float | None = None,
    degraded_reason: str | None = None,
) -> Pool:
    return Pool(
        deployments=MappingProxyType({d.id: d for d in deployments}),
        groups=MappingProxyType({g.name: g for g in groups}),
        built_at=time.time() if built_at is None else built_at,
        source=source,
        degraded_reason=degraded_reason,
    )


def deployment_id(provider: str, model: str, name: str = "") -> str:
    """Stable across rebuilds and restarts: derived only from what the deployment is."""
    digest = hashlib.sha256(f"{provider}|{model}|{name}".encode()).hexdigest()[:12]
    return f"{provider}-{digest}"


def static_deployment(spec: StaticDeployment, index: int) -> Deployment:
    provider, _, name = spec.model.partition("/")
    if spec.wire == "auto":
        wire: Wire = "openai" if provider in OPENAI_WIRE_PROVIDERS and spec.api_base else "litellm"
    else:
        wire = spec.wire
    upstream = name if wire == "openai" else spec.model
    return Deployment(
        id=deployment_id(provider, spec.model, f"{spec.name}#{index}"),
        model=spec.name,
        provider=provider,
        upstream_model=upstream,
        wire=wire,
        api_base=(spec.api_base or "").rstrip("/"),
        credential=f"env:{spec.api_key_env}" if spec.api_key_env else None,
        tier="static",
        context_length=spec.context_length,
        prompt_price=spec.input_cost_per_token,
        completion_price=spec.output_cost_per_token,
        capabilities=Capabilities(tools=spec.tools, vision=spec.vision, json_mode=spec.json_mode),
        rpm=spec.rpm,
        tpm=spec.tpm,
    )


def static_groups(settings: Settings) -> tuple[list[Deployment], list[Group]]:
    """The config's static deployments as deployments and one group per name."""
    deployments: list[Deployment] = []
    by_name: dict[str, list[Member]] = {}
    for index, spec in enumerate(settings.deployments):
        dep = static_deployment(spec, index)
        deployments.append(dep)
        members = by_name.setdefault(spec.name, [])
        members.append(Member(deployment_id=dep.id, rank=len(members) + 1, weight=spec.weight))
    groups = [
        Group(
            name=name,
            kind="static",
            members=tuple(members),
            fallbacks=tuple(settings.fallbacks.get(name, ())),
        )
        for name, members in by_name.items()
    ]
    return deployments, groups


def alias_fallbacks(name: str, spec: AliasSpec, settings: Settings) -> tuple[tuple[str, ...], tuple[str, ...]]:
    extra = settings.fallbacks.get(name, [])
    return tuple(dict.fromkeys([*spec.fallbacks, *extra])), tuple(spec.context_window_fallbacks)
