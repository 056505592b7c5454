"""Bad input gets a clear OpenAI-shaped error with the right status — never a 500, never a hang."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import OPENROUTER_TEST_KEY, tcp_listener

GOOD = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def gateway(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.conftest import LiveGateway
    from turnout.config import Settings

    settings = Settings(sandbox="off", openrouter_base_url=sandbox.base_url, openrouter_api_key=OPENROUTER_TEST_KEY,
                        data_dir=tmp_path_factory.mktemp("data"), api_keys=["key-one-test", "key-two-test"],
                        admin_key="admin-key", max_body_bytes=512 * 1024)
    gw = LiveGateway(settings).start()
    yield gw
    gw.stop()


def post(gateway: Any, body: Any = None, *, raw: bytes | None = None, key: str | None = "key-one-test",
         headers: dict[str, str] | None = None) -> httpx.Response:
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if key:
        all_headers["Authorization"] = f"Bearer {key}"
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(f"{gateway.url}/v1/chat/completions", content=content, headers=all_headers, timeout=10)


def assert_error(resp: httpx.Response, status: int, *, code: str | None = None, param: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    return error


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "auto"}, "messages"),
        ({"model": "auto", "messages": []}, "messages"),
        ({"model": "auto", "messages": "hi"}, "messages"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": 5, "messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": "auto", "messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({"model": "auto", "messages": [{"role": "user", "content": 42}]}, "messages[0].content"),
        ({"model": "auto", "messages": ["hi"]}, "messages[0]"),
        ({**GOOD, "stream": "yes"}, "stream"),
        ({**GOOD, "max_tokens": -1}, "max_tokens"),
        ({**GOOD, "temperature": "hot"}, "temperature"),
        ({**GOOD, "tools": "all"}, "tools"),
    ],
)
def test_invalid_fields_get_400_naming_the_field(gateway: Any, body: dict, param: str) -> None:
    assert_error(post(gateway, body), 400, param=param)


def test_malformed_json_gets_400(gateway: Any) -> None:
    assert_error(post(gateway, raw=b'{"model": "auto", "messages": [}'), 400, code="invalid_json")


def test_invalid_utf8_gets_400(gateway: Any) -> None:
    assert_error(post(gateway, raw=b'{"model": "\xff\xfe"}'), 400, code="invalid_json")


def test_non_object_body_gets_400(gateway: Any) -> None:
    assert_error(post(gateway, raw=b"[1, 2, 3]"), 400)


def test_deeply_nested_json_gets_400(gateway: Any) -> None:
    assert post(gateway, raw=b"[" * 5_000 + b"]" * 5_000).status_code == 400


def test_wrong_content_type_gets_415(gateway: Any) -> None:
    assert_error(post(gateway, GOOD, headers={"Content-Type": "text/plain"}), 415)


def test_body_over_limit_gets_413(gateway: Any) -> None:
    big = {**GOOD, "messages": [{"role": "user", "content": "x" * (600 * 1024)}]}
    assert_error(post(gateway, big), 413)


def test_missing_or_wrong_key_gets_401(gateway: Any) -> None:
    assert_error(post(gateway, GOOD, key=None), 401)
    assert_error(post(gateway, GOOD, key="not-a-key"), 401)
    assert post(gateway, GOOD, key="key-two-test").status_code == 200


def test_models_need_a_key_too(gateway: Any) -> None:
    assert httpx.get(f"{gateway.url}/v1/models").status_code == 401
    ok = httpx.get(f"{gateway.url}/v1/models", headers={"Authorization": "Bearer key-one-test"})
    assert ok.status_code == 200


def test_admin_routes_need_the_admin_key(gateway: Any) -> None:
    url = f"{gateway.url}/admin/pool"
    assert httpx.get(url, headers={"Authorization": "Bearer key-one-test"}).status_code == 401
    resp = httpx.get(url, headers={"Authorization": "Bearer admin-key"})
    assert resp.status_code == 200 and "auto" in resp.json()["groups"]


def test_unknown_model_gets_404_with_close_names(gateway: Any) -> None:
    error = assert_error(post(gateway, {**GOOD, "model": "atuo"}), 404, code="model_not_found")
    assert "auto" in error["message"]


@pytest.mark.parametrize("field", ["api_base", "base_url", "api_key", "custom_llm_provider", "mock_response",
                                   "litellm_params", "aws_region_name", "_excluded_deployment_ids"])
def test_routing_fields_are_refused(gateway: Any, field: str) -> None:
    assert_error(post(gateway, {**GOOD, field: "x"}), 400, code="forbidden_field", param=field)


def test_api_base_never_reaches_the_clients_listener(gateway: Any) -> None:
    with tcp_listener() as (port, received):
        client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="key-one-test", max_retries=0)
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}],
                                           extra_body={"api_base": f"http://127.0.0.1:{port}/v1"})
        for _ in range(3):  # give a stray connection time to show up
            client.models.list()
    assert "api_base" in str(info.value)
    assert received == []


def test_ten_thousand_messages_are_served(gateway: Any) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "m"}] * 10_000}
    assert post(gateway, body).status_code == 200


def test_unknown_route_is_openai_shaped(gateway: Any) -> None:
    resp = httpx.get(f"{gateway.url}/v1/nope")
    assert resp.status_code == 404 and "error" in resp.json()


def test_secret_never_leaves_the_gateway(gateway: Any, caplog: pytest.LogCaptureFixture) -> None:
    headers = {"Authorization": "Bearer admin-key"}
    bodies = [
        httpx.get(f"{gateway.url}/v1/models", headers=headers).text,
        httpx.get(f"{gateway.url}/admin/pool", headers=headers).text,
        post(gateway, {**GOOD, "model": "nope"}).text,
        post(gateway, GOOD).text,
    ]
    for text in bodies + [caplog.text]:
        assert OPENROUTER_TEST_KEY not in text
