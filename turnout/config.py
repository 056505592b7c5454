"""Turnout's configuration: one `Settings` object, built in the app factory.

Sources, highest priority first: keyword arguments (tests), environment variables,
the YAML file named by ``TURNOUT_CONFIG``, then the defaults below. Every option is
documented in ``config.example.yaml``. Invalid values stop the start with a message that
names the field (see `load_settings`).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

Tier = Literal["free", "paid"]
# LiteLLM Router strategies a static group may name (`strategies`); simple-shuffle is the default.
Strategy = Literal["simple-shuffle", "latency-based-routing", "usage-based-routing-v2", "least-busy"]
DEFAULT_OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(_Section):
    """Per-attempt and per-request time limits, in seconds."""

    connect_s: float = Field(5.0, gt=0)
    first_byte_s: float = Field(60.0, gt=0)
    stream_first_token_s: float = Field(45.0, gt=0)
    stream_idle_s: float = Field(20.0, gt=0)
    request_deadline_s: float = Field(180.0, gt=0)


class Retries(_Section):
    """How hard one request tries before it gives up."""

    attempts_per_group: int = Field(3, ge=1, le=20)
    max_fallbacks: int = Field(4, ge=0, le=20)
    backoff_base_s: float = Field(0.05, ge=0)
    backoff_max_s: float = Field(2.0, ge=0)
    cooldown_s: float = Field(30.0, ge=0)
    cooldown_min_s: float = Field(2.0, ge=0)
    allowed_fails: int = Field(2, ge=0)
    retry_after_wait_max_s: float = Field(4.0, ge=0)


class StreamSettings(_Section):
    """Streams slow to start (hedging) and streams that break after they started (continuation)."""

    max_resumes: int = Field(2, ge=0, le=10)
    hedge_after_s: float | None = Field(8.0, gt=0)
    no_prefill: list[str] = Field(default_factory=list)
    hold_tool_calls: bool = True


class RankWeight(_Section):
    max_rank: int = Field(ge=1)
    weight: int = Field(ge=1)


class AliasSpec(_Section):
    """A routable alias: a filter over the pool, a ranking, a size per tier and fallbacks."""

    description: str = ""
    tiers: list[Tier] = Field(default_factory=lambda: list[Tier](["free", "paid"]), min_length=1)
    size: dict[Tier, int] = Field(default_factory=lambda: dict[Tier, int]({"free": 8, "paid": 4}))
    require_tools: bool = True
    require_vision: bool = False
    require_json: bool = False
    require_reasoning: bool = False
    min_context: int = Field(0, ge=0)
    sort_by: Literal["score", "context"] = "score"
    fallbacks: list[str] = Field(default_factory=list)
    context_window_fallbacks: list[str] = Field(default_factory=list)
    content_policy_fallbacks: list[str] = Field(default_factory=list)
    sticky: bool = False

    @field_validator("size")
    @classmethod
    def _sizes_positive(cls, value: dict[str, int]) -> dict[str, int]:
        for tier, n in value.items():
            if n < 0:
                raise ValueError(f"size for {tier} must be >= 0")
        return value


def default_aliases() -> dict[str, AliasSpec]:
    return {
        "auto": AliasSpec(
            description="Free tool-capable models first, paid tool-capable models after.",
            context_window_fallbacks=["long"],
            sticky=True,
        ),
        "free": AliasSpec(description="Free tool-capable models only.", tiers=["free"], size={"free": 10}),
        "paid": AliasSpec(description="Paid tool-capable models only.", tiers=["paid"], size={"paid": 6}),
        "vision": AliasSpec(
            description="Models that accept image input, free first.",
            require_tools=False,
            require_vision=True,
            size={"free": 4, "paid": 4},
        ),
        "long": AliasSpec(
            description="The largest context windows, free first; `auto` falls back here on context overflow.",
            min_context=200_000,
            sort_by="context",
            size={"free": 4, "paid": 4},
        ),
    }


class HealthSettings(_Section):
    """Active health reads of `/models/{author}/{slug}/endpoints`."""

    enabled: bool = True
    candidates_per_tier: int = Field(24, ge=0)
    concurrency: int = Field(8, ge=1)
    timeout_s: float = Field(5.0, gt=0)
    min_uptime: float = Field(80.0, ge=0, le=100)
    keep_previous_when_failed_share: float = Field(0.5, ge=0, le=1)
    weight: float = Field(0.35, ge=0, le=1)


class FreeTierSettings(_Section):
    """OpenRouter's account-wide free quota (all `:free` models share it)."""

    requests_per_minute: int = Field(20, ge=0)
    requests_per_day: int | None = Field(None, ge=0)
    headroom: int = Field(2, ge=0)


class PoolSettings(_Section):
    """How the pool is built from the catalogue and kept fresh."""

    catalogue_refresh_s: float = Field(3600.0, gt=0)
    health_refresh_s: float = Field(300.0, gt=0)
    jitter: float = Field(0.1, ge=0, le=0.5)
    min_context: int = Field(8192, ge=0)
    exclude_providers: list[str] = Field(default_factory=list)
    exclude_ids: list[str] = Field(default_factory=list)
    exclude_suffixes: list[str] = Field(default_factory=lambda: [":batch", ":thinking", ":extended"])
    blocklist: list[str] = Field(default_factory=list)
    blocklist_file: Path | None = None
    allowlist: list[str] = Field(default_factory=list)
    allowlist_file: Path | None = None
    hysteresis_margin: float = Field(0.10, ge=0)
    rank_weights: list[RankWeight] = Field(
        default_factory=lambda: [
            RankWeight(max_rank=2, weight=6),
            RankWeight(max_rank=5, weight=3),
            RankWeight(max_rank=10, weight=1),
        ]
    )
    allow_paid: bool = True
    paid_max_tokens: int | None = Field(4096, ge=1)
    health: HealthSettings = Field(default_factory=HealthSettings)
    free_tier: FreeTierSettings = Field(default_factory=FreeTierSettings)


class StaticDeployment(_Section):
    """A hand-written deployment: any LiteLLM provider, joined to the pool under `name`."""

    name: str = Field(min_length=1)
    model: str = Field(min_length=3, description="LiteLLM model string, provider/model")
    api_base: str | None = None
    api_key_env: str | None = None
    wire: Literal["auto", "openai", "litellm"] = "auto"
    weight: int = Field(1, ge=1)
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)
    context_length: int | None = Field(None, ge=1)
    tools: bool = True
    vision: bool = False
    json_mode: bool = True
    input_cost_per_token: float = Field(0.0, ge=0)
    output_cost_per_token: float = Field(0.0, ge=0)
    sticky: bool = False

    @field_validator("model")
    @classmethod
    def _has_provider(cls, value: str) -> str:
        if "/" not in value:
            raise ValueError("must be 'provider/model', e.g. 'ollama/llama3.1' or 'anthropic/claude-sonnet-4-5'")
        return value

    @model_validator(mode="after")
    def _wire_needs_base(self) -> StaticDeployment:
        if self.wire == "openai" and not self.api_base:
            raise ValueError("wire 'openai' needs an api_base")
        return self


class SessionSettings(_Section):
    """Sticky sessions: a conversation's turns stay on the deployment that answered its first."""

    enabled: bool = True
    ttl_s: float = Field(3600.0, gt=0)
    max_entries: int = Field(100_000, ge=1)


KEY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class GatewayKey(_Section):
    """A named client key: who it is (name, tenant), what it may call, and its limits."""

    name: str = Field(pattern=KEY_NAME_PATTERN)
    key: SecretStr | None = None
    key_env: str | None = None
    tenant: str | None = Field(None, pattern=KEY_NAME_PATTERN)
    tenants: list[Annotated[str, Field(pattern=KEY_NAME_PATTERN)]] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)
    rpm: int | None = Field(None, ge=1)
    daily_budget_usd: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _one_secret(self) -> GatewayKey:
        if (self.key is None) == (self.key_env is None):
            raise ValueError(f"key {self.name!r}: give exactly one of `key_env` (YAML) or `key` (environment only)")
        return self

    @property
    def own_tenant(self) -> str:
        return self.tenant or self.name

    def secret(self) -> str | None:
        """The key itself; None while `key_env` names an unset variable (the key is then off)."""
        if self.key is not None:
            return self.key.get_secret_value()
        return os.environ.get(self.key_env or "") or None


def _is_loopback(host: str) -> bool:
    if host in {"localhost", "ip6-localhost"}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Everything Turnout can be told. Built once, in the app factory."""

    model_config = SettingsConfigDict(
        env_prefix="TURNOUT_",
        env_nested_delimiter="__",
        env_ignore_empty=True,
        extra="forbid",
        frozen=True,
        populate_by_name=True,
    )

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    keys: list[GatewayKey] = Field(default_factory=list)
    admin_key: SecretStr | None = None
    auth_disabled: bool = False
    openrouter_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("OPENROUTER_API_KEY", "openrouter_api_key")
    )
    openrouter_base_url: str = Field(
        DEFAULT_OPENROUTER_BASE_URL,
        validation_alias=AliasChoices("OPENROUTER_BASE_URL", "openrouter_base_url"),
    )
    sandbox: Literal["auto", "on", "off"] = "auto"
    data_dir: Path = Path("data")
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    max_messages: int = Field(10_000, ge=1)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_prompts: bool = False
    shutdown_grace_s: float = Field(20.0, ge=0)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    retries: Retries = Field(default_factory=Retries)
    streams: StreamSettings = Field(default_factory=StreamSettings)
    pool: PoolSettings = Field(default_factory=PoolSettings)
    aliases: dict[str, AliasSpec] = Field(default_factory=default_aliases)
    deployments: list[StaticDeployment] = Field(default_factory=list)
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    strategies: dict[str, Strategy] = Field(default_factory=dict)
    sessions: SessionSettings = Field(default_factory=SessionSettings)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("openrouter_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check_consistency(self) -> Settings:
        if not _is_loopback(self.host) and not self.auth_required and not self.auth_disabled:
            raise ValueError(
                f"host: refusing to listen on non-loopback address {self.host!r} without any API key; "
                "set TURNOUT_API_KEYS (or auth_disabled: true to run open on purpose)"
            )
        names = set(self.aliases) | {d.name for d in self.deployments}
        for alias, spec in self.aliases.items():
            for target in [*spec.fallbacks, *spec.context_window_fallbacks, *spec.content_policy_fallbacks]:
                if target not in names:
                    raise ValueError(f"aliases.{alias}: fallback {target!r} is not an alias or deployment name")
        for source, targets in self.fallbacks.items():
            for target in [source, *targets]:
                if target not in names:
                    raise ValueError(f"fallbacks.{source}: {target!r} is not an alias or deployment name")
        for group in self.strategies:
            if group not in {d.name for d in self.deployments}:
                raise ValueError(f"strategies.{group}: not a deployment name (only static groups take a strategy)")
        _check_keys(self.keys, self.api_keys)
        clash = set(self.aliases) & {d.name for d in self.deployments}
        if clash:
            raise ValueError(f"deployments: names {sorted(clash)} clash with alias names")
        return self

    @property
    def use_sandbox(self) -> bool:
        if self.sandbox == "auto":
            return self.openrouter_api_key is None
        return self.sandbox == "on"

    @property
    def auth_required(self) -> bool:
        """Keys, once configured, are always enforced; `auth_disabled` only allows running open off loopback."""
        return bool(self.api_keys or self.active_keys)

    @property
    def active_keys(self) -> list[GatewayKey]:
        """Named keys whose secret is set (a `key_env` variable that is unset turns its key off)."""
        return [k for k in self.keys if k.secret() is not None]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_path = os.environ.get("TURNOUT_CONFIG")
        if config_path:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=Path(config_path)))
        return tuple(sources)


def _check_keys(keys: list[GatewayKey], plain: list[SecretStr]) -> None:
    names = [k.name for k in keys]
    for name in sorted({n for n in names if names.count(n) > 1}):
        raise ValueError(f"keys: the name {name!r} is used twice")
    if "default" in names and plain:
        raise ValueError("keys: the name 'default' is taken by `api_keys` (the unnamed keys)")
    secrets = [k.secret() for k in keys if k.secret() is not None] + [k.get_secret_value() for k in plain]
    if len(set(secrets)) != len(secrets):
        raise ValueError("keys: two keys share the same secret")


class ConfigError(Exception):
    """The configuration cannot be used; the message names the field."""


def load_settings(**overrides: Any) -> Settings:
    """Build `Settings` from the environment and the YAML file, with readable errors."""
    config_path = os.environ.get("TURNOUT_CONFIG")
    if config_path and not Path(config_path).is_file():
        raise ConfigError(f"TURNOUT_CONFIG: no such file: {config_path}")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in err["loc"]) or "config"
        lines.append(f"{field}: {err['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)
