"""Static deployments from config (both paths), and the no-key sandbox mode."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

MODEL = "z-ai/glm-5.2:free"


def test_translated_path_serves_and_streams(start_gateway: Callable[..., Any], sandbox: Any,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """`wire: litellm` goes through litellm.acompletion: same API, same headers."""
    monkeypatch.setenv("SANDBOX_UPSTREAM_KEY", "sk-static-test-key")
    gw = start_gateway(deployments=[{"name": "translated", "model": f"openai/{MODEL}", "api_base": sandbox.base_url,
                                     "wire": "litellm", "api_key_env": "SANDBOX_UPSTREAM_KEY"}],
                       pool={"health": {"enabled": False}})
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="x", max_retries=0)
    completion = client.chat.completions.create(model="translated", messages=[{"role": "user", "content": "hi"}])
    assert f"Hello from {MODEL}" in completion.choices[0].message.content
    call = sandbox.server.calls_for(MODEL)[-1]
    assert call.headers["Authorization"] == "Bearer ***"
    chunks = list(client.chat.completions.create(model="translated", messages=[{"role": "user", "content": "hi"}],
                                                 stream=True))
    assert "Hello from" in "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_static_group_falls_back_to_an_alias(start_gateway: Callable[..., Any], sandbox: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    gw = start_gateway(deployments=[{"name": "local", "model": "openai/llama3.1", "api_base": "http://127.0.0.1:9",
                                     "wire": "openai"}],
                       fallbacks={"local": ["auto"]}, pool={"health": {"enabled": False}})
    resp = httpx.post(f"{gw.url}/v1/chat/completions", timeout=30,
                      json={"model": "local", "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 200
    assert resp.headers["x-turnout-fallback"] == "true" and resp.headers["x-turnout-group"] == "auto"
    models = httpx.get(f"{gw.url}/v1/models").json()["data"]
    local = next(m for m in models if m["id"] == "local")
    assert local["kind"] == "static" and local["tier"] == "static"


def test_without_a_key_the_builtin_sandbox_serves(start_gateway: Callable[..., Any],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="turnout")
    gw = start_gateway(sandbox="auto", openrouter_api_key=None,
                       openrouter_base_url="https://openrouter.ai/api/v1", pool={"health": {"enabled": False}})
    assert "no OPENROUTER_API_KEY: serving the sandbox catalogue with simulated answers" in caplog.text
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="x", max_retries=0)
    completion = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    assert "Hello from" in completion.choices[0].message.content
    assert gw.state.holder.current.pool.source == "sandbox"


def test_sandbox_state_is_kept_apart_and_called_sandbox(start_gateway: Callable[..., Any], sandbox: Any,
                                                        tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    import shutil

    from turnout.sandbox import FaultPlan

    caplog.set_level(logging.INFO, logger="turnout")
    data = tmp_path / "state"
    demo = start_gateway(sandbox="auto", openrouter_api_key=None, data_dir=data,
                         openrouter_base_url="https://openrouter.ai/api/v1", pool={"health": {"enabled": False}})
    ready = httpx.get(f"{demo.url}/readyz").json()
    assert ready["source"] == "sandbox"
    assert "source=sandbox" in caplog.text
    assert ">sandbox<" in httpx.get(f"{demo.url}/status").text
    demo.stop()
    assert (data / "sandbox" / "pool.json").is_file() and not (data / "pool.json").exists()

    sandbox.server.set_plan(FaultPlan(catalogue_error=503))  # "OpenRouter" is down for the live start
    live = start_gateway(data_dir=data, pool={"health": {"enabled": False}})
    ready = httpx.get(f"{live.url}/readyz").json()
    assert ready["status"] == "not_ready" and "persisted" not in ready["reason"], ready
    live.stop()

    # A sandbox pool persisted where the live one lives (before they were kept apart) is not served either.
    shutil.copy(data / "sandbox" / "pool.json", data / "pool.json")
    caplog.clear()
    again = start_gateway(data_dir=data, pool={"health": {"enabled": False}})
    assert httpx.get(f"{again.url}/readyz").json()["status"] == "not_ready"
    assert "was built for another OpenRouter address" in caplog.text


def test_static_only_mode_reads_nothing_upstream_and_is_ready(start_gateway: Callable[..., Any], sandbox: Any,
                                                              caplog: pytest.LogCaptureFixture,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """`pool.enabled: false`: the static deployments alone, no catalogue/key/health reads, no sandbox, ready."""
    from tests.conftest import tcp_listener

    caplog.set_level(logging.INFO, logger="turnout")
    monkeypatch.setenv("SANDBOX_UPSTREAM_KEY", "sk-static-test-key")
    with tcp_listener() as (port, received):
        gw = start_gateway(sandbox="auto", openrouter_api_key=None, openrouter_base_url=f"http://127.0.0.1:{port}/api/v1",
                           pool={"enabled": False}, admin_key="admin-key-static",
                           deployments=[{"name": "local", "model": f"openai/{MODEL}", "api_base": sandbox.base_url,
                                         "wire": "openai", "api_key_env": "SANDBOX_UPSTREAM_KEY"}])
        ready = httpx.get(f"{gw.url}/readyz").json()
        assert ready["status"] == "ready" and ready["source"] == "static" and "reason" not in ready
        resp = httpx.post(f"{gw.url}/v1/chat/completions", timeout=30,
                          json={"model": "local", "messages": [{"role": "user", "content": "hi"}]})
        assert resp.status_code == 200
        assert sorted(g for g in gw.state.holder.current.pool.groups) == ["local"]
        httpx.post(f"{gw.url}/admin/refresh", timeout=30,  # rebuilds from config alone
                   headers={"Authorization": "Bearer admin-key-static"}).raise_for_status()
        assert httpx.get(f"{gw.url}/readyz").json()["status"] == "ready"
        assert received == [], "nothing may reach the OpenRouter address"
    assert "sandbox" not in caplog.text
