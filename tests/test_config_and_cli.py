"""Configuration is validated at start with errors that name the field; the CLI stays light."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from turnout.config import ConfigError, load_settings

ROOT = Path(__file__).parents[1]


def test_env_vars_configure_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_PORT", "9123")
    monkeypatch.setenv("TURNOUT_HOST", "127.0.0.2")
    monkeypatch.setenv("TURNOUT_API_KEYS", "key-aaaa, key-bbbb ,key-cccc")
    monkeypatch.setenv("OPENROUTER_BASE_URL", "http://127.0.0.1:1/api/v1/")
    settings = load_settings()
    assert (settings.port, settings.host) == (9123, "127.0.0.2")
    assert [k.get_secret_value() for k in settings.api_keys] == ["key-aaaa", "key-bbbb", "key-cccc"]
    assert settings.openrouter_base_url == "http://127.0.0.1:1/api/v1"


def test_yaml_file_is_read_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent("""
        port: 7000
        retries: {attempts_per_group: 2}
        deployments:
          - {name: fast, model: ollama/llama3.1, api_base: "http://127.0.0.1:11434"}
        fallbacks: {fast: [auto]}
    """))
    monkeypatch.setenv("TURNOUT_CONFIG", str(config))
    monkeypatch.setenv("TURNOUT_PORT", "7001")
    settings = load_settings()
    assert settings.port == 7001 and settings.retries.attempts_per_group == 2
    assert settings.deployments[0].name == "fast"


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("port: high", "port"),
        ("retries: {attempts_per_group: 0}", "retries.attempts_per_group"),
        ("aliases: {auto: {tiers: [gold]}}", "aliases.auto.tiers.0"),
        ("deployments: [{name: x, model: nomodel}]", "deployments.0.model"),
        ("unknown_option: 1", "unknown_option"),
        ("fallbacks: {auto: [nowhere]}", "fallbacks.auto"),
    ],
)
def test_bad_config_names_the_field(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, yaml_text: str, field: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml_text)
    monkeypatch.setenv("TURNOUT_CONFIG", str(config))
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert field in str(info.value)


def test_non_loopback_without_keys_is_refused() -> None:
    with pytest.raises(ConfigError, match="without any API key"):
        load_settings(host="0.0.0.0", sandbox="on")
    assert load_settings(host="0.0.0.0", auth_disabled=True, sandbox="on").host == "0.0.0.0"
    assert load_settings(host="0.0.0.0", api_keys="key-1234", sandbox="on").auth_required


def test_missing_config_file_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TURNOUT_CONFIG", str(tmp_path / "absent.yaml"))
    with pytest.raises(ConfigError, match="TURNOUT_CONFIG"):
        load_settings()


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **env}, timeout=120)


def test_cli_help_does_not_import_litellm() -> None:
    result = _run("import sys, contextlib, io\n"
                  "from turnout.cli import main\n"
                  "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
                  "    main(['--help'])\n"
                  "print('litellm' in sys.modules)")
    assert result.stdout.strip() == "False", result.stderr


def test_cli_reports_bad_config_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("port: -5\n")
    result = subprocess.run([sys.executable, "-m", "turnout.cli", "serve"], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "TURNOUT_CONFIG": str(config)}, timeout=60)
    assert result.returncode == 2
    assert "port" in result.stderr


def test_pool_command_prints_litellm_config(tmp_path: Path) -> None:
    import yaml

    env = {k: v for k, v in os.environ.items() if k != "OPENROUTER_API_KEY"}
    result = subprocess.run([sys.executable, "-m", "turnout.cli", "pool", "--format", "litellm"], capture_output=True,
                            text=True, cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert result.returncode == 0, result.stderr
    config: Any = yaml.safe_load(result.stdout)
    names = {entry["model_name"] for entry in config["model_list"]}
    assert {"auto", "free", "paid"} <= names
    assert all(e["litellm_params"]["model"].startswith("openrouter/") for e in config["model_list"])
    assert "sk-" not in result.stdout


def test_empty_env_values_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_LOG_LEVEL", "")
    assert load_settings().log_level == "INFO"  # secrets set but empty are refused instead (tests/security)


def test_nested_options_have_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_TIMEOUTS__CONNECT_S", "3.5")
    monkeypatch.setenv("TURNOUT_POOL__HEALTH__MIN_UPTIME", "95")
    settings = load_settings()
    assert settings.timeouts.connect_s == 3.5 and settings.pool.health.min_uptime == 95


def test_configured_keys_are_enforced_even_with_auth_disabled() -> None:
    assert load_settings(host="0.0.0.0", auth_disabled=True, api_keys="key-1234", sandbox="on").auth_required
