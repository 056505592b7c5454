"""Item 6: a browser page cannot use a keyless gateway: JSON content type, loopback Host, admin key always."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from turnout.api.asgi import is_json_media_type
from turnout.api.hosts import host_name, is_loopback_name

GOOD = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def keyless(start_gateway: Callable[..., Any]) -> Any:
    return start_gateway(pool={"health": {"enabled": False}})


@pytest.mark.parametrize("content_type", [None, "text/plain; x=json", "text/plain", "application/jsonp",
                                          "application/x-www-form-urlencoded; charset=json", "json"])
def test_a_body_without_a_json_media_type_gets_415_saying_what_to_send(keyless: Any, sandbox: Any,
                                                                       content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type is not None else {}
    before = len(sandbox.server.calls)
    for path in ("/v1/chat/completions", "/v1/messages", "/v1/responses"):
        resp = httpx.post(f"{keyless.url}{path}", content=json.dumps(GOOD).encode(), headers=headers, timeout=15)
        assert resp.status_code == 415, (path, resp.text)
        assert "Content-Type: application/json" in resp.text
    assert len(sandbox.server.calls) == before


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON; charset=utf-8",
                                          "application/vnd.api+json"])
def test_json_media_types_are_served(keyless: Any, content_type: str) -> None:
    resp = httpx.post(f"{keyless.url}/v1/chat/completions", content=json.dumps(GOOD).encode(),
                      headers={"Content-Type": content_type}, timeout=30)
    assert resp.status_code == 200, resp.text


def test_keyless_mode_serves_only_loopback_host_names(keyless: Any, sandbox: Any) -> None:
    before = len(sandbox.server.calls)
    for path in ("/v1/chat/completions", "/v1/models", "/status", "/metrics"):
        resp = httpx.request("POST" if path.endswith("completions") else "GET", f"{keyless.url}{path}", json=GOOD,
                             headers={"Host": "attacker.example"}, timeout=15)
        assert resp.status_code == 403, (path, resp.text)
        assert resp.json()["error"]["code"] == "host_not_allowed"
    anthropic = httpx.post(f"{keyless.url}/v1/messages", json=GOOD, headers={"Host": "attacker.example:8080"})
    assert anthropic.status_code == 403 and anthropic.json()["type"] == "error"
    assert len(sandbox.server.calls) == before
    for host in ("localhost", f"127.0.0.1:{keyless.port}", "[::1]:80", "LOCALHOST:1"):
        assert httpx.get(f"{keyless.url}/v1/models", headers={"Host": host}).status_code == 200, host


def test_allowed_hosts_and_keys_lift_the_host_check(start_gateway: Callable[..., Any]) -> None:
    named = start_gateway(allowed_hosts=["gateway.internal"], pool={"health": {"enabled": False}})
    assert httpx.get(f"{named.url}/v1/models", headers={"Host": "gateway.internal:443"}).status_code == 200
    assert httpx.get(f"{named.url}/v1/models", headers={"Host": "other.internal"}).status_code == 403
    keyed = start_gateway(api_keys=["client-key-0123456789"], pool={"health": {"enabled": False}})
    resp = httpx.get(f"{keyed.url}/v1/models", headers={"Host": "public.example",
                                                          "Authorization": "Bearer client-key-0123456789"})
    assert resp.status_code == 200


def test_admin_routes_are_closed_without_an_admin_key(keyless: Any) -> None:
    before = keyless.state.manager.status()
    for method, path in (("POST", "/admin/refresh"), ("GET", "/admin/pool")):
        resp = httpx.request(method, f"{keyless.url}{path}", timeout=30)
        assert resp.status_code == 403, resp.text
        assert "TURNOUT_ADMIN_KEY" in resp.json()["error"]["message"]
    assert keyless.state.manager.status() == before  # no refresh ran


def test_media_type_and_host_parsing() -> None:
    assert [is_json_media_type(v) for v in ("application/json", " application/json ;charset=utf-8",
                                            "application/problem+json", "application/+json", "text/json",
                                            "application/json-seq", None, "")] == [
        True, True, True, False, False, False, False, False]
    assert [host_name(v) for v in ("a.example:80", "[::1]:8080", "[::1]", "127.0.0.1", "Localhost")] == [
        "a.example", "::1", "::1", "127.0.0.1", "localhost"]
    assert [is_loopback_name(v) for v in ("localhost", "app.localhost", "127.8.0.1", "::1", "10.0.0.1",
                                          "localhost.example")] == [True, True, True, True, False, False]


def test_host_check_remembers_a_few_answers_and_still_checks_new_names() -> None:
    from turnout.api.hosts import SEEN_HOSTS, HostCheck

    check = HostCheck(["gw.internal"])

    def scope(host: bytes) -> dict[str, object]:
        return {"headers": [(b"host", host)]}

    for _ in range(2):  # asked twice: the second answer comes from memory and must be the same
        assert check.refused(scope(b"127.0.0.1:8080")) is None
        assert check.refused(scope(b"GW.internal")) is None
        assert check.refused(scope(b"evil.example:80")) == "evil.example:80"
    for i in range(SEEN_HOSTS * 2):  # past the memory's size every name is still checked
        assert check.refused(scope(f"rebind{i}.example".encode())) == f"rebind{i}.example"
    assert check.refused(scope(b"localhost")) is None
