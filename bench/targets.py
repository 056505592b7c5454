"""The gateways under test: how each is configured, started and addressed.

Every target answers `POST /v1/chat/completions`; streaming deployments are separate model
names (`bench-s20`, `bench-s500`) whose upstream URL picks nginx's 20- or 500-chunk body.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PROXY_VENV = HERE / ".venv-litellm-proxy"
SHORT_STREAM, LONG_STREAM = 20, 500
STREAMS = (SHORT_STREAM, LONG_STREAM)
ADMIN_KEY = "bench-admin-key"
API_PATHS = {"chat": "/v1/chat/completions", "messages": "/v1/messages", "responses": "/v1/responses"}


@dataclass
class Target:
    key: str
    label: str
    argv: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    deployments: int | None = None
    cwd: Path | None = None
    routes_streams_by_path: bool = False  # the raw pass-through forwards the path as-is
    skip_reason: str | None = None

    def chat_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    def api_url(self, api: str) -> str:
        """Turnout's route for one API: chat, messages (Anthropic) or responses (OpenAI)."""
        return f"http://127.0.0.1:{self.port}{API_PATHS[api]}"

    def stream_url(self, chunks: int) -> str:
        if self.routes_streams_by_path:
            return f"http://127.0.0.1:{self.port}/s{chunks}/v1/chat/completions"
        return self.chat_url()

    @staticmethod
    def stream_model(chunks: int) -> str:
        return f"bench-s{chunks}"


def _clean_env() -> dict[str, str]:
    """The caller's environment without anything that would configure a gateway behind our back."""
    drop = ("TURNOUT_", "OPENROUTER_", "LITELLM_", "DATABASE_URL", "REDIS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def passthrough(*, port: int, nginx: str) -> Target:
    return Target(
        key="raw-aiohttp", label="raw aiohttp pass-through",
        argv=[sys.executable, str(HERE / "passthrough.py"), "--port", str(port), "--upstream", nginx],
        port=port, env=_clean_env(), routes_streams_by_path=True,
    )


def turnout(*, port: int, nginx: str, deployments: int, out: Path, src: Path | None = None) -> Target:
    """Turnout from the working tree, or from the source tree `src` (e.g. an exported commit)."""
    key = f"turnout-{deployments}"
    config = out / f"{key}.yaml"
    static = [{"name": "bench", "model": f"openai/m{i}", "api_base": f"{nginx}/v1", "wire": "openai"}
              for i in range(deployments)]
    static += [{"name": Target.stream_model(n), "model": f"openai/s{n}", "api_base": f"{nginx}/s{n}/v1",
                "wire": "openai"} for n in STREAMS]
    config.write_text(yaml.safe_dump({"deployments": static}, sort_keys=False))
    env = _clean_env() | {
        "TURNOUT_CONFIG": str(config),
        "TURNOUT_SANDBOX": "off",
        "TURNOUT_PORT": str(port),
        "TURNOUT_HOST": "127.0.0.1",
        "TURNOUT_ADMIN_KEY": ADMIN_KEY,
        "TURNOUT_DATA_DIR": str(out / f"{key}-data"),
        "OPENROUTER_API_KEY": "dummy",
        "OPENROUTER_BASE_URL": f"{nginx}/api/v1",
    }
    argv = [str(REPO / ".venv" / "bin" / "turnout"), "serve"]
    if src is not None:
        # The venv's editable install points at the working tree; PYTHONPATH puts `src` first.
        argv = [str(REPO / ".venv" / "bin" / "python"), "-m", "turnout.cli", "serve"]
        env["PYTHONPATH"] = str(src)
    return Target(
        key=key, label=f"Turnout, {deployments} deployments",
        argv=argv, port=port, env=env, deployments=deployments, cwd=src,
    )


def litellm_proxy(*, port: int, nginx: str, deployments: int, out: Path, skip_reason: str | None) -> Target:
    key = "litellm-proxy"
    binary = PROXY_VENV / "bin" / "litellm"
    if skip_reason is None and not binary.exists():
        skip_reason = f"{binary.relative_to(REPO)} is missing (its install failed or was skipped)"
    config = out / f"{key}.yaml"
    models = [{"model_name": "bench",
               "litellm_params": {"model": f"openai/m{i}", "api_base": f"{nginx}/v1", "api_key": "dummy"}}
              for i in range(deployments)]
    models += [{"model_name": Target.stream_model(n),
                "litellm_params": {"model": f"openai/s{n}", "api_base": f"{nginx}/s{n}/v1", "api_key": "dummy"}}
               for n in STREAMS]
    config.write_text(yaml.safe_dump({"model_list": models, "router_settings": {"routing_strategy": "simple-shuffle"}},
                                     sort_keys=False))
    return Target(
        key=key, label=f"LiteLLM proxy, {deployments} deployments",
        argv=[str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
              "--num_workers", "1", "--telemetry", "False"],
        port=port, env=_clean_env(), deployments=deployments, skip_reason=skip_reason,
    )
