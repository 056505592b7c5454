"""Named gateway keys against the running gateway and the sandbox: tenants, limits, budgets, usage.

Group `qwen` is one static deployment on the sandbox's paid `qwen/qwen3.8-27b`, so every
answer carries a real `usage.cost`; `glm` is a free sandbox model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import CHAIN_PRIMARY, LiveGateway
from turnout.config import ConfigError, load_settings

HELLO = [{"role": "user", "content": "hello"}]
ADMIN = "admin-key-0123456789"
KEYS = {"team-a": "sk-team-a-0123456789", "team-b": "sk-team-b-0123456789", "capped": "sk-capped-0123456789",
        "broke": "sk-broke-0123456789"}


@pytest.fixture
def keyed(start_gateway: Callable[..., LiveGateway], sandbox: Any, monkeypatch: pytest.MonkeyPatch,
          tmp_path: Path) -> Callable[..., LiveGateway]:
    for name, secret in KEYS.items():
        monkeypatch.setenv(f"KEY_{name.upper().replace('-', '_')}", secret)
    monkeypatch.setenv("SANDBOX_UPSTREAM_KEY", "sk-static-test-key")
    common = {"api_base": sandbox.base_url, "wire": "openai", "api_key_env": "SANDBOX_UPSTREAM_KEY"}

    def start(**overrides: Any) -> LiveGateway:
        settings: dict[str, Any] = {
            "admin_key": ADMIN,
            "api_keys": "sk-plain-0123456789",
            "keys": [
                {"name": "team-a", "key_env": "KEY_TEAM_A", "tenant": "acme", "tenants": ["acme-eu", "acme-us"]},
                {"name": "team-b", "key_env": "KEY_TEAM_B", "models": ["glm"]},
                {"name": "capped", "key_env": "KEY_CAPPED", "rpm": 2},
                {"name": "broke", "key_env": "KEY_BROKE", "daily_budget_usd": 0.000001},
            ],
            "deployments": [{"name": "qwen", "model": "openai/qwen/qwen3.8-27b", **common},
                            {"name": "glm", "model": f"openai/{CHAIN_PRIMARY}", **common}],
            "pool": {"health": {"enabled": False}},
            "data_dir": tmp_path / "data",
            **overrides,
        }
        return start_gateway(**settings)

    return start


def chat(gw: LiveGateway, key: str, model: str = "qwen", **extra: Any) -> httpx.Response:
    return httpx.post(f"{gw.url}/v1/chat/completions", json={"model": model, "messages": HELLO, **extra},
                      headers={"Authorization": f"Bearer {key}"}, timeout=30)


def metric(gw: LiveGateway, name: str, **labels: str) -> float:
    text = httpx.get(f"{gw.url}/metrics", timeout=10).text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))  # the exposition sorts them
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name}{{{want}}} in /metrics: " + "\n".join(l for l in text.splitlines() if name in l))


def test_usage_and_cost_are_counted_per_key_and_tenant(keyed: Callable[..., LiveGateway]) -> None:
    gw = keyed()
    # Every configured series exists from the start, at 0.
    assert metric(gw, "turnout_key_cost_usd_total", key="team-a", tenant="acme-eu") == 0
    assert chat(gw, KEYS["team-a"]).status_code == 200
    assert chat(gw, KEYS["team-a"], metadata={"tenant_id": "acme-eu"}).status_code == 200
    spoofed = chat(gw, KEYS["team-a"], metadata={"tenant_id": "someone-else"})  # not listed: counted as acme
    assert spoofed.status_code == 200
    assert chat(gw, "sk-plain-0123456789").status_code == 200
    cost = float(spoofed.headers["x-turnout-cost-usd"])
    assert cost > 0
    assert metric(gw, "turnout_key_requests_total", key="team-a", tenant="acme") == 2
    assert metric(gw, "turnout_key_requests_total", key="team-a", tenant="acme-eu") == 1
    assert metric(gw, "turnout_key_requests_total", key="default", tenant="default") == 1
    assert metric(gw, "turnout_key_cost_usd_total", key="team-a", tenant="acme") == pytest.approx(2 * cost)
    assert metric(gw, "turnout_key_tokens_total", key="team-a", tenant="acme-eu", kind="completion") > 0
    assert "someone-else" not in httpx.get(f"{gw.url}/metrics", timeout=10).text


def test_a_key_over_its_rpm_gets_429_with_retry_after(keyed: Callable[..., LiveGateway]) -> None:
    gw = keyed()
    assert [chat(gw, KEYS["capped"], "glm").status_code for _ in range(2)] == [200, 200]
    refused = chat(gw, KEYS["capped"], "glm")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
    assert "'capped'" in error["message"] and "2 requests per minute" in error["message"]
    # Anthropic clients get Anthropic's shape.
    messages = httpx.post(f"{gw.url}/v1/messages", headers={"x-api-key": KEYS["capped"]}, timeout=30,
                          json={"model": "glm", "max_tokens": 16, "messages": HELLO})
    assert messages.status_code == 429 and "retry-after" in messages.headers
    assert messages.json()["type"] == "error" and messages.json()["error"]["type"] == "rate_limit_error"
    assert chat(gw, KEYS["team-a"], "glm").status_code == 200  # other keys are not limited
    assert metric(gw, "turnout_key_rejected_total", key="capped", reason="rpm") == 2


def test_a_key_over_its_daily_budget_gets_429_until_midnight_utc_even_after_a_restart(
        keyed: Callable[..., LiveGateway]) -> None:
    gw = keyed()
    assert chat(gw, KEYS["broke"]).status_code == 200  # spends more than its $0.000001
    refused = chat(gw, KEYS["broke"])
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "budget_exceeded" and "daily budget" in error["message"]
    assert "00:00 UTC" in error["message"]
    retry = int(refused.headers["retry-after"])
    assert 1 <= retry <= 86400
    assert abs(retry - int(re.search(r"in (\d+)s", error["message"]).group(1))) <= 2  # type: ignore[union-attr]
    assert metric(gw, "turnout_key_rejected_total", key="broke", reason="budget") == 1
    gw.stop()  # the spend is saved on shutdown and read at start
    again = keyed()
    assert chat(again, KEYS["broke"]).status_code == 429


def test_a_key_limited_to_some_models_gets_403_for_others(keyed: Callable[..., LiveGateway]) -> None:
    gw = keyed()
    assert chat(gw, KEYS["team-b"], "glm").status_code == 200
    refused = chat(gw, KEYS["team-b"], "qwen")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "model_not_allowed"
    assert "'qwen'" in refused.json()["error"]["message"]
    assert chat(gw, KEYS["team-b"], "GLM").status_code == 200  # the group as resolved, any case


def test_admin_usage_reports_today_and_this_week_by_key_tenant_and_model(keyed: Callable[..., LiveGateway]) -> None:
    gw = keyed()
    assert chat(gw, KEYS["team-a"]).status_code == 200
    assert chat(gw, KEYS["team-a"], "glm", metadata={"tenant_id": "acme-us"}).status_code == 200
    assert chat(gw, KEYS["broke"]).status_code == 200
    assert httpx.get(f"{gw.url}/admin/usage", timeout=10).status_code == 401
    assert httpx.get(f"{gw.url}/admin/usage", headers={"Authorization": f"Bearer {KEYS['team-a']}"},
                     timeout=10).status_code == 401
    report = httpx.get(f"{gw.url}/admin/usage", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10).json()
    today = report["today"]
    assert today["total"]["requests"] == 3
    assert today["keys"]["team-a"]["requests"] == 2
    assert set(today["tenants"]) == {"acme", "acme-us", "broke"}
    assert today["models"]["qwen"]["requests"] == 2 and today["models"]["qwen"]["cost_usd"] > 0
    assert today["models"]["glm"]["cost_usd"] == 0
    assert report["week"]["total"]["requests"] == 3 and report["week"]["to"] == today["to"]
    broke = next(k for k in report["keys"] if k["name"] == "broke")
    assert broke["spent_today_usd"] > broke["daily_budget_usd"] and broke["remaining_today_usd"] == 0
    assert 0 < report["budget_resets_in_s"] <= 86400
    assert not any(secret in json.dumps(report) for secret in KEYS.values())


def test_plain_keys_and_the_admin_key_still_work(keyed: Callable[..., LiveGateway]) -> None:
    gw = keyed()
    assert chat(gw, "sk-plain-0123456789", "glm").status_code == 200
    assert chat(gw, ADMIN, "glm").status_code == 200
    assert chat(gw, "sk-wrong-0123456789", "glm").status_code == 401
    assert metric(gw, "turnout_key_requests_total", key="admin", tenant="admin") == 1


def test_keys_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_KEYS", json.dumps([{"name": "ci", "key": "sk-ci-0123456789", "rpm": 5}]))
    settings = load_settings()
    assert settings.keys[0].name == "ci" and settings.keys[0].rpm == 5 and settings.auth_required
    assert "sk-ci" not in repr(settings.keys[0])


def test_a_key_whose_variable_is_unset_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE_123", raising=False)
    settings = load_settings(keys=[{"name": "a", "key_env": "NOT_SET_ANYWHERE_123"}])
    assert settings.active_keys == [] and not settings.auth_required  # as with no key at all
    with pytest.raises(ConfigError, match="non-loopback"):  # and it cannot open a public listener
        load_settings(host="0.0.0.0", keys=[{"name": "a", "key_env": "NOT_SET_ANYWHERE_123"}])


@pytest.mark.parametrize(("keys", "message"), [
    ([{"name": "a", "key": "s1-0123456789"}, {"name": "a", "key": "s2-0123456789"}], "'a' is used twice"),
    ([{"name": "a", "key": "s1-0123456789"}, {"name": "b", "key": "s1-0123456789"}], "share the same secret"),
    ([{"name": "a"}], "exactly one of"),
    ([{"name": "bad name", "key": "s1-0123456789"}], "keys.0.name"),
])
def test_bad_keys_stop_the_start_naming_the_problem(keys: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(keys=keys)


def test_a_refused_request_has_its_log_line(keyed: Callable[..., LiveGateway], caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="turnout.requests")
    gw = keyed()
    assert chat(gw, KEYS["team-b"], "qwen").status_code == 403
    assert chat(gw, KEYS["team-b"], "no-such-model").status_code == 404
    gw.stop()  # flushes the batched log lines
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "turnout.requests"]
    assert [(line["status"], line["error"]) for line in lines] == [(403, "model_not_allowed"),
                                                                   (404, "model_not_found")]


def test_a_key_limited_to_some_models_lists_only_those(keyed: Callable[..., LiveGateway]) -> None:
    gw = keyed()
    listed = httpx.get(f"{gw.url}/v1/models", headers={"Authorization": f"Bearer {KEYS['team-b']}"}, timeout=10)
    assert [m["id"] for m in listed.json()["data"]] == ["glm"]
    everything = httpx.get(f"{gw.url}/v1/models", headers={"x-api-key": KEYS["team-a"]}, timeout=10).json()
    assert {"glm", "qwen", "auto"} <= {m["id"] for m in everything["data"]}
    one = httpx.get(f"{gw.url}/v1/models/qwen", headers={"Authorization": f"Bearer {KEYS['team-b']}"}, timeout=10)
    assert one.status_code == 403 and one.json()["error"]["code"] == "model_not_allowed"
