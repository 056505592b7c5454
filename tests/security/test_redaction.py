"""Item 7: no configured secret leaves the gateway, even when an upstream echoes it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import OPENROUTER_TEST_KEY
from tests.security.recorder import Recorder
from turnout.config import Settings
from turnout.observability.redaction import Redactor, configured_secrets

STATIC_KEY = "sk-static-echoed-0123456789"
CLIENT_KEY = "client-key-0123456789"
ADMIN_KEY = "admin-key-0123456789"


@pytest.mark.parametrize("status", [400, 500, 401])
def test_an_upstream_echoing_the_credential_does_not_leak_it(start_gateway: Callable[..., Any], upstream: Recorder,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture, status: int) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("ECHO_KEY", STATIC_KEY)
    upstream.echo_credential, upstream.status = True, status
    gw = start_gateway(deployments=[{"name": "echo", "model": "openai/echo", "api_base": upstream.base_url,
                                     "wire": "openai", "api_key_env": "ECHO_KEY"}],
                       api_keys=[CLIENT_KEY], admin_key=ADMIN_KEY, pool={"health": {"enabled": False}})
    auth = {"Authorization": f"Bearer {CLIENT_KEY}"}
    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
    plain = httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=auth, timeout=30)
    assert upstream.seen and upstream.seen[0].headers["authorization"] == f"Bearer {STATIC_KEY}"
    assert plain.status_code >= 400 and "Rejected credential" in plain.text
    streamed = httpx.post(f"{gw.url}/v1/chat/completions", json={**body, "stream": True}, headers=auth, timeout=30)
    anthropic = httpx.post(f"{gw.url}/v1/messages", json={**body, "max_tokens": 10}, headers=auth, timeout=30)
    pages = [httpx.get(f"{gw.url}{path}", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30).text
             for path in ("/status", "/metrics", "/admin/pool", "/readyz", "/v1/models")]
    gw.stop()
    for text in [plain.text, streamed.text, anthropic.text, *pages, caplog.text]:
        for secret in (STATIC_KEY, CLIENT_KEY, ADMIN_KEY, OPENROUTER_TEST_KEY):
            assert secret not in text


def test_every_configured_secret_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEP_KEY", "deployment-secret-1")
    settings = Settings(openrouter_api_key="sk-or-secret-2", api_keys=["client-secret-3", "client-secret-4"],
                        admin_key="admin-secret-5", sandbox="off",
                        deployments=[{"name": "d", "model": "openai/x", "api_key_env": "DEP_KEY"}])
    assert sorted(configured_secrets(settings)) == sorted(
        ["deployment-secret-1", "sk-or-secret-2", "client-secret-3", "client-secret-4", "admin-secret-5"])
    redactor = Redactor.for_settings(settings)
    text = "a deployment-secret-1 b sk-or-secret-2 c client-secret-4 d admin-secret-5"
    assert redactor.text(text) == "a *** b *** c *** d ***"
    assert redactor.data(text.encode()) == b"a *** b *** c *** d ***"
    assert not Redactor(["short"])  # too short to mask without masking words
