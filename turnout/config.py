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
    SettingsError,
    YamlConfigSettingsSource,
)

MIN_KEY_CHARS = 8  # gateway and admin keys; shorter ones could not be masked in text without masking words
# Secrets come from the environment only: the config file may not hold them (field -> variable).
SECRET_FIELDS = {"api_keys": "TURNOUT_API_KEYS", "admin_key": "TURNOUT_ADMIN_KEY",
                 "openrouter_api_key": "OPENROUTER_API_KEY"}
# Secret variables that, when present but empty, mean a secret failed to mount: refused at start.
SECRET_VARIABLES = ("OPENROUTER_API_KEY", "TURNOUT_API_KEYS", "TURNOUT_ADMIN_KEY", "TURNOUT_KEYS")
Tier = Literal["free", "paid"]
PriceField = Literal["prompt", "completion", "request", "image"]  # OpenRouter's provider.max_price keys
# LiteLLM Router strategies a static group may name (`strategies`); simple-shuffle is the default.
Strategy = Literal["simple-shuffle", "latency-based-routing", "usage-based-routing-v2", "least-busy"]
DEFAULT_OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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
    # Image-output models (architecture.output_modalities has "image") join only aliases that
    # require it, and such aliases take only them: text aliases never answer with pictures.
    require_image_output: bool = False
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
        "images": AliasSpec(
            description="Models that generate images (text and image output), free first; "
                        "POST /v1/images/generations and chat with modalities [image, text].",
            require_tools=False,
            require_image_output=True,
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

    # False: no OpenRouter pool at all (static deployments only): no catalogue, /key or health reads.
    enabled: bool = True
    catalogue_refresh_s: float = Field(3600.0, gt=0)
    health_refresh_s: float = Field(300.0, gt=0)
    jitter: float = Field(0.1, ge=0, le=0.5)
    # After a failed refresh: the first retry's delay, doubled per failure (jittered) up to
    # health_refresh_s.
    refresh_retry_min_s: float = Field(5.0, gt=0)
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
    allowed_plugins: list[str] = Field(default_factory=list)
    max_price: dict[PriceField, float] = Field(default_factory=dict)
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


class ServerSettings(_Section):
    """What one connection may cost before a whole request has arrived (turnout.api.http_limits)."""

    max_header_bytes: int = Field(64 * 1024, ge=1024)
    header_timeout_s: float = Field(10.0, gt=0)
    body_timeout_s: float = Field(60.0, gt=0)
    keep_alive_s: int = Field(30, ge=1)
    max_connections: int = Field(2048, ge=1)


class SessionSettings(_Section):
    """Sticky sessions: a conversation's turns stay on the deployment that answered its first."""

    enabled: bool = True
    ttl_s: float = Field(3600.0, gt=0)
    max_entries: int = Field(100_000, ge=1)


class SharedStateSettings(_Section):
    """State several replicas share through Redis (see README "Running several replicas").

    No `redis_url` and no `host`: every process keeps its own state (the default)."""

    redis_url: SecretStr | None = None  # redis:// or rediss:// (TLS); may carry the password
    host: str | None = None
    port: int = Field(6379, ge=1, le=65535)
    db: int = Field(0, ge=0)
    password: SecretStr | None = None
    tls: bool = False
    key_prefix: str = Field("turnout:", min_length=1)
    op_timeout_s: float = Field(0.05, gt=0, le=5)
    lock_ttl_s: float = Field(10.0, ge=1)
    sync_s: float = Field(0.5, gt=0, le=10)
    reconnect_max_s: float = Field(5.0, gt=0)
    accept_per_process_state: bool = False

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// (TLS) or unix://")
        return value

    @property
    def enabled(self) -> bool:
        return self.redis_url is not None or self.host is not None


class ProbeSettings(_Section):
    """`turnout probe` defaults (each has a flag), and what a fed probe result does in the gateway."""

    concurrency: int = Field(4, ge=1, le=64)
    timeout_s: float = Field(30.0, gt=0)
    max_tokens: int = Field(16, ge=1)
    prompt: str = Field("Hello, world!", min_length=1)
    resume_ttl_s: float = Field(3600.0, gt=0)
    # A free model waits for the free quota at most this long; longer (the day's quota is spent): skipped.
    max_free_wait_s: float = Field(120.0, ge=0)
    # POST /admin/probe: how long a model the probe found broken stays out of rotation.
    feed_cooldown_s: float = Field(600.0, gt=0)


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
        allow_inf_nan=False,
    )

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    keys: list[GatewayKey] = Field(default_factory=list)
    admin_key: SecretStr | None = None
    auth_disabled: bool = False
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
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
    shared_state: SharedStateSettings = Field(default_factory=SharedStateSettings)
    workers: int = Field(1, ge=1, le=64)
    server: ServerSettings = Field(default_factory=ServerSettings)
    probe: ProbeSettings = Field(default_factory=ProbeSettings)

    @field_validator("api_keys", "allowed_hosts", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("api_keys", "admin_key")
    @classmethod
    def _long_enough(cls, value: Any) -> Any:
        keys = value if isinstance(value, list) else [value] if value is not None else []
        for key in keys:
            if len(key.get_secret_value()) < MIN_KEY_CHARS:
                raise ValueError(f"a key must have at least {MIN_KEY_CHARS} characters (use 32 random ones)")
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
        if self.openrouter_api_key is not None and not self.openrouter_api_key.get_secret_value().strip():
            raise ValueError("openrouter_api_key: is empty; set the key, or leave it unset for the sandbox")
        if self.sandbox == "auto" and self.openrouter_api_key is None and not _is_loopback(self.host):
            raise ValueError(
                f"sandbox: refusing to serve simulated answers on non-loopback address {self.host!r} because "
                "OPENROUTER_API_KEY is unset; set it, or sandbox: on (TURNOUT_SANDBOX=on) to serve the sandbox on purpose"
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
        if self.workers > 1 and not self.shared_state.enabled and not self.shared_state.accept_per_process_state:
            raise ValueError(
                f"workers: {self.workers} processes without shared_state.redis_url would each keep their own "
                "free-tier budget, cooldowns, rpm/tpm counts and pins (N processes would spend N times the "
                "account's free quota); set shared_state.redis_url, or shared_state.accept_per_process_state: "
                "true to run them apart on purpose"
            )
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
            return self.openrouter_api_key is None and self.pool.enabled
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
            sources.append(_YamlFile(settings_cls, yaml_file=Path(config_path)))
        return tuple(sources)


def _yaml_loader() -> Any:
    """libyaml's safe loader when PyYAML was built with it (its wheels are): the same documents,
    nodes and marks as the pure-Python SafeLoader, parsed ~10x faster (a 300-deployment file
    took 0.2 s of the cold start, read twice)."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _YamlFile(YamlConfigSettingsSource):
    """pydantic-settings' YAML source, read with `_yaml_loader()`."""

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        import yaml

        with file_path.open(encoding=self.yaml_file_encoding or "utf-8") as handle:
            data: dict[str, Any] = yaml.load(handle, Loader=_yaml_loader()) or {}  # a safe loader
        return data


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
    """Build `Settings` from the environment and the YAML file, with readable errors: one
    line that names the field (and, for the file, its line), never a traceback."""
    config_path = os.environ.get("TURNOUT_CONFIG")
    lines: dict[tuple[str, ...], int] = {}
    if config_path:
        if not Path(config_path).is_file():
            raise ConfigError(f"TURNOUT_CONFIG: no such file: {config_path}")
        lines = check_yaml_file(Path(config_path))
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, lines=lines, file=config_path)) from None
    except SettingsError as exc:  # a nested section's env var that is not JSON
        raise ConfigError(_describe_settings_error(exc)) from None
    _refuse_empty_secrets(settings)
    return settings


def check_yaml_file(path: Path) -> dict[tuple[str, ...], int]:
    """Refuse a file that is not YAML, not a mapping, or holds a secret; return each key's line."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=_yaml_loader())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"TURNOUT_CONFIG: {path}{where}: not valid YAML: {exc.problem or exc.context}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"TURNOUT_CONFIG: {path}: cannot be read: {exc}") from None
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        kind = {"SequenceNode": "a list", "ScalarNode": "a single value"}.get(type(node).__name__, "not a mapping")
        raise ConfigError(f"TURNOUT_CONFIG: {path}: the top level must be a mapping of option: value; it is {kind}")
    lines: dict[tuple[str, ...], int] = {}
    _key_lines(node, (), lines)
    for key_node, value_node in node.value:
        if key_node.value in SECRET_FIELDS and _holds_value(value_node):
            raise ConfigError(
                f"{key_node.value}: {path} line {key_node.start_mark.line + 1}: secrets are read from the "
                f"environment only ({SECRET_FIELDS[key_node.value]}), never from the config file; remove it there")
        if key_node.value == "keys" and isinstance(value_node, yaml.SequenceNode):
            for index, entry in enumerate(value_node.value):  # a named key's secret: `key_env` names its variable
                for field_node, field_value in getattr(entry, "value", ()) if isinstance(entry, yaml.MappingNode) else ():
                    if field_node.value == "key" and _holds_value(field_value):
                        raise ConfigError(
                            f"keys.{index}.key: {path} line {field_node.start_mark.line + 1}: secrets are read from "
                            "the environment only; name the variable that holds it with `key_env`")
    return lines


def _holds_value(node: Any) -> bool:
    return bool(node.tag != "tag:yaml.org,2002:null" and getattr(node, "value", None) not in ("", []))


def _key_lines(node: Any, path: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            here = (*path, str(key_node.value))
            lines[here] = key_node.start_mark.line + 1
            _key_lines(value_node, here, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            here = (*path, str(index))
            lines[here] = item.start_mark.line + 1
            _key_lines(item, here, lines)


def _describe_settings_error(exc: SettingsError) -> str:
    field = str(exc).split('"')[1] if str(exc).count('"') >= 2 else "config"
    return (f"TURNOUT_{field.upper()}: not a JSON object; set a nested option with "
            f"TURNOUT_{field.upper()}__<OPTION>, or the whole section as JSON")


def _refuse_empty_secrets(settings: Settings) -> None:
    """A secret variable that is set but empty is a secret that failed to mount: the gateway
    would otherwise run open, or serve the sandbox's simulated answers as if they were real."""
    variables = [name for name in SECRET_VARIABLES if not (name == "OPENROUTER_API_KEY" and settings.sandbox == "on")]
    variables += [d.api_key_env for d in settings.deployments if d.api_key_env]
    for name in variables:
        if name in os.environ and not os.environ[name].strip():
            raise ConfigError(
                f"{name}: is set but empty (a secret that failed to mount?); give it a value or unset it"
                + (", or set TURNOUT_SANDBOX=on to serve the sandbox on purpose" if name == "OPENROUTER_API_KEY" else "")
            )


def describe_validation_error(exc: ValidationError, *, lines: dict[tuple[str, ...], int] | None = None,
                              file: str | None = None) -> str:
    """One line: each failing field with its message, and the file's line when it was set there."""
    found = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = tuple(str(part) for part in err["loc"])
        field = ".".join(loc) or "config"
        where = _line_of(loc, lines or {}) if file else None
        found.append(f"{field}: {err['msg']}" + (f" ({file} line {where})" if where else ""))
    return "invalid configuration: " + "; ".join(found)


def _line_of(loc: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> int | None:
    """The file line that set `loc` (its longest prefix the file has), unless the environment set it."""
    if not loc or any(name == f"TURNOUT_{loc[0].upper()}" or name.startswith(f"TURNOUT_{loc[0].upper()}__")
                      for name in os.environ):
        return None
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None
