"""Per-deployment rpm/tpm: a deployment at its limit is skipped like a cooled-down one; all at it: 429."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import CHAIN_BACKUP as B
from tests.conftest import CHAIN_PRIMARY as A
from turnout.config import StaticDeployment
from turnout.pool.model import static_groups
from turnout.routing.limits import DeploymentLimits

HELLO = [{"role": "user", "content": "hello"}]


def chat(gw: Any, model: str = "primary") -> httpx.Response:
    return httpx.post(f"{gw.url}/v1/chat/completions", json={"model": model, "messages": HELLO}, timeout=30)


def limited(sandbox: Any, **limits: int) -> list[dict[str, Any]]:
    common = {"api_base": sandbox.base_url, "wire": "openai", "api_key_env": "SANDBOX_UPSTREAM_KEY"}
    return [{"name": "primary", "model": f"openai/{A}", **common, **limits},
            {"name": "backup", "model": f"openai/{B}", **common}]


def test_rpm_holds_and_the_walk_moves_on(chain: Callable[..., Any], sandbox: Any) -> None:
    gw = chain(deployments=limited(sandbox, rpm=2))
    answers = [chat(gw) for _ in range(6)]
    assert [r.status_code for r in answers] == [200] * 6
    assert len(sandbox.server.calls_for(A)) == 2
    assert len(sandbox.server.calls_for(B)) == 4
    assert [r.headers["x-turnout-model"] for r in answers[2:]] == ["backup"] * 4


def test_every_deployment_at_its_limit_answers_429_with_retry_after(chain: Callable[..., Any],
                                                                   sandbox: Any) -> None:
    gw = chain(deployments=limited(sandbox, rpm=1)[:1], fallbacks={"primary": []})
    assert chat(gw).status_code == 200
    refused = chat(gw)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert len(sandbox.server.calls_for(A)) == 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_tpm_counts_reported_tokens_over_a_sliding_minute() -> None:
    clock = Clock()
    limits = DeploymentLimits(clock=clock)
    settings_dep = StaticDeployment(name="x", model="openai/x", api_base="http://127.0.0.1:9", tpm=100)
    dep = next(iter(static_groups_of([settings_dep])))
    assert limits.admit(dep) is None
    limits.spend_tokens(dep, 120)
    wait = limits.admit(dep)
    assert wait is not None and 59 <= wait <= 60
    clock.now += 61
    assert limits.admit(dep) is None


def static_groups_of(deps: list[StaticDeployment]) -> list[Any]:
    from turnout.config import Settings

    found, _ = static_groups(Settings(deployments=deps))
    return list(found)
