"""`config.example.yaml` documents every option, shows the defaults, and loads.

Adding a field to `Settings` (or to any model nested in it) without documenting it in
`config.example.yaml` fails `test_every_option_is_documented`, naming the field.
No network, no LiteLLM.
"""

from __future__ import annotations

import os
import tomllib
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices, BaseModel

from turnout.config import Settings, default_aliases, load_settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.yaml"
# Top-level fields whose example value is data, not the default.
DATA_DEPENDENT = {"aliases", "deployments", "fallbacks", "strategies", "keys"}
# Secrets: set through the environment only, so the example leaves them empty.
SECRETS = {"api_keys", "admin_key", "openrouter_api_key"}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        upper = name.upper()
        if upper.startswith("TURNOUT_") or upper in {"OPENROUTER_API_KEY", "OPENROUTER_BASE_URL"}:
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def example(clean_env: pytest.MonkeyPatch) -> Settings:
    clean_env.setenv("TURNOUT_CONFIG", str(EXAMPLE))
    return load_settings()


def raw_example() -> dict[str, Any]:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{EXAMPLE.name} must be a YAML mapping"
    return data


# --- walking the models -----------------------------------------------------------------


def models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside an annotation: X, list[X], dict[str, X], X | None, ..."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        for model in models_in(arg):
            if model not in found:
                found.append(model)
    return found


def instances(value: Any, annotation: Any, model: type[BaseModel]) -> Iterator[dict[str, Any]]:
    """The YAML mappings in `value` that stand for `model`, following the shape of `annotation`."""
    if annotation is model:
        if isinstance(value, dict):
            yield value
        return
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        yield from instances(value, args[0], model)
    elif origin in (typing.Union, types.UnionType):
        for arg in args:
            yield from instances(value, arg, model)
    elif isinstance(origin, type) and issubclass(origin, Mapping):
        if isinstance(value, dict) and args:
            for item in value.values():
                yield from instances(item, args[-1], model)
    elif isinstance(origin, type) and issubclass(origin, (Sequence, set, frozenset)) and not issubclass(origin, str):
        if isinstance(value, list) and args:
            for item in value:
                yield from instances(item, args[0], model)


def yaml_keys(name: str, field: Any) -> set[str]:
    """The keys a field may be written under: its name and its validation aliases."""
    keys = {name}
    alias = field.validation_alias
    if isinstance(alias, str):
        keys.add(alias)
    elif isinstance(alias, AliasChoices):
        keys.update(choice for choice in alias.choices if isinstance(choice, str))
    return keys


def undocumented(model: type[BaseModel], nodes: list[dict[str, Any]], path: str = "") -> list[str]:
    """Dotted paths of `model`'s fields (recursively) that appear in none of `nodes`.

    `nodes` are the YAML mappings standing for `model`; a field counts as documented when
    at least one of them has it as a key (e.g. `aliases.*.require_json` on any alias).
    """
    missing: list[str] = []
    for name, field in model.model_fields.items():
        where = f"{path}.{name}" if path else name
        keys = yaml_keys(name, field)
        values = [node[key] for node in nodes for key in keys if key in node]
        if not values:
            missing.append(where)
            continue
        for sub in models_in(field.annotation):
            origin = typing.get_origin(field.annotation)
            suffix = "" if field.annotation is sub or origin in (typing.Union, types.UnionType) else "[*]"
            children = [child for value in values for child in instances(value, field.annotation, sub)]
            missing += undocumented(sub, children, where + suffix)
    return missing


# --- the tests ---------------------------------------------------------------------------


def test_example_loads(example: Settings) -> None:
    assert example.deployments, "the example shows static deployments"


def test_every_option_is_documented() -> None:
    missing = undocumented(Settings, [raw_example()])
    assert not missing, (
        f"{EXAMPLE.name} does not document these options: {', '.join(missing)}. "
        "Add each, with a comment saying what it does, its unit, default and env var."
    )


def test_the_walker_names_nested_missing_fields() -> None:
    """Guard the guard: removing a nested key must be reported by its path."""
    data = raw_example()
    del data["pool"]["health"]["weight"]
    del data["timeouts"]["stream_idle_s"]
    for spec in data["aliases"].values():
        spec.pop("require_json", None)
    for dep in data["deployments"]:
        dep.pop("rpm", None)
    for band in data["pool"]["rank_weights"]:
        band.pop("max_rank", None)
    del data["openrouter_api_key"]
    missing = undocumented(Settings, [data])
    assert set(missing) == {
        "pool.health.weight",
        "timeouts.stream_idle_s",
        "aliases[*].require_json",
        "deployments[*].rpm",
        "pool.rank_weights[*].max_rank",
        "openrouter_api_key",
    }


def test_every_option_has_a_comment_above_it() -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    commented: set[str] = set()
    previous = ""
    for line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        body = stripped.removeprefix("- ").strip()
        if body and not body.startswith("#") and ":" in body:
            key = body.split(":", 1)[0].strip()
            if previous.removeprefix("-").strip().startswith("#"):
                commented.add(key)
        previous = stripped
    names = {name for model in all_models(Settings) for name in model.model_fields}
    uncommented = sorted(names - commented)
    assert not uncommented, f"{EXAMPLE.name}: no comment line right above any occurrence of: {uncommented}"


def all_models(model: type[BaseModel]) -> list[type[BaseModel]]:
    found = [model]
    for field in model.model_fields.values():
        for sub in models_in(field.annotation):
            found += [m for m in all_models(sub) if m not in found]
    return found


def test_values_equal_the_defaults(example: Settings, clean_env: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    differing = [
        f"{name}: example {getattr(example, name)!r} != default {getattr(defaults, name)!r}"
        for name in Settings.model_fields
        if name not in DATA_DEPENDENT and getattr(example, name) != getattr(defaults, name)
    ]
    assert not differing, f"{EXAMPLE.name} must show the defaults:\n  " + "\n  ".join(differing)


def test_aliases_are_the_built_in_set(example: Settings) -> None:
    built_in = default_aliases()
    assert list(example.aliases) == list(built_in)
    for name, spec in built_in.items():
        assert example.aliases[name] == spec, f"aliases.{name} differs from default_aliases()"


def test_seed_deployments_and_fallbacks(example: Settings) -> None:
    models = {d.name: d.model for d in example.deployments}
    assert models == {
        "fast": "ollama/llama3.1",
        "quality": "anthropic/claude-sonnet-4-5",
        "quality-openai": "openai/gpt-4o",
    }
    assert example.fallbacks == {"quality": ["quality-openai"]}
    keys = {d.name: d.api_key_env for d in example.deployments}
    assert keys == {"fast": None, "quality": "ANTHROPIC_API_KEY", "quality-openai": "OPENAI_API_KEY"}


def test_no_secrets_in_the_example() -> None:
    data = raw_example()
    for name in SECRETS:
        assert data.get(name) in (None, []), f"{name} must stay empty in {EXAMPLE.name}: set it in the environment"


def test_environment_beats_the_file(clean_env: pytest.MonkeyPatch) -> None:
    """What the container does: the example as config file, the rest from the environment."""
    clean_env.setenv("TURNOUT_CONFIG", str(EXAMPLE))
    clean_env.setenv("TURNOUT_HOST", "0.0.0.0")
    clean_env.setenv("TURNOUT_AUTH_DISABLED", "true")
    clean_env.setenv("TURNOUT_DATA_DIR", "/data")
    clean_env.setenv("OPENROUTER_API_KEY", "sk-or-v1-from-env")
    settings = load_settings()
    assert settings.host == "0.0.0.0"
    assert settings.data_dir == Path("/data")
    assert settings.openrouter_api_key is not None
    assert settings.openrouter_api_key.get_secret_value() == "sk-or-v1-from-env"
    assert not settings.use_sandbox


def test_package_data_covers_app_data() -> None:
    """Every bundled data file ships in the wheel (and so in the Docker image)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["turnout"]
    app_dir = ROOT / "turnout"
    covered = {path for pattern in patterns for path in app_dir.glob(pattern) if path.is_file()}
    bundled = {p for p in (app_dir / "data").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    left_out = sorted(str(p.relative_to(ROOT)) for p in bundled - covered)
    assert not left_out, f"pyproject.toml [tool.setuptools.package-data] misses: {left_out}"


def test_compose_publishes_on_loopback_only() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    service = compose["services"]["turnout"]
    for port in service["ports"]:
        assert str(port).startswith("127.0.0.1:"), f"port {port!r} must be published on 127.0.0.1 only"
    env = service["environment"]
    mounts = [str(v) for v in service["volumes"]]
    if env.get("TURNOUT_CONFIG"):  # none by default (tests/test_compose.py: no example deployments join)
        assert any(m.endswith(":" + env["TURNOUT_CONFIG"] + ":ro") for m in mounts), "TURNOUT_CONFIG is mounted"


def test_dockerfile_runs_one_uvicorn_process() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert 'CMD ["turnout", "serve"]' in text
    assert "--workers" not in text
    assert "USER 10001" in text or "USER turnout" in text
