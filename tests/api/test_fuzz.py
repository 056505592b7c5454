"""Requests generated from the gateway's own OpenAPI document (schemathesis): whatever comes in,
no answer is a 5xx, none hangs, and every 4xx is in its API's shape: OpenAI's
`{"error": {message, type, param, code}}`, Anthropic's `{"type": "error", "error": {type, message}}`
on /v1/messages.

The schema is read from a running gateway (GET /openapi.json) and its upstream is the sandbox.
Most valid chat bodies get a real alias as `model`, so they go all the way to the sandbox and
back instead of stopping at "unknown model".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import OPENROUTER_TEST_KEY, LiveGateway

CLIENT_KEY = "fuzz-client-key"
ADMIN_KEY = "fuzz-admin-key"
REQUEST_TIMEOUT_S = 10
KNOWN_MODELS = ["auto", "free", "paid", "vision", "images", "long", "z-ai/glm-5.2:free"]
POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
# (method, path, mode, max_examples). Negative mode only where there is a body to break: a path
# parameter typed "string" accepts any value, so there is no invalid one to generate.
RUNS = [
    ("POST", "/v1/chat/completions", POSITIVE, 80),
    ("POST", "/v1/chat/completions", NEGATIVE, 80),
    ("POST", "/v1/messages", POSITIVE, 50),
    ("POST", "/v1/messages", NEGATIVE, 50),
    ("POST", "/v1/messages/count_tokens", POSITIVE, 20),
    ("POST", "/v1/responses", POSITIVE, 50),
    ("POST", "/v1/responses", NEGATIVE, 50),
    ("POST", "/v1/images/generations", POSITIVE, 30),
    ("POST", "/v1/images/generations", NEGATIVE, 30),
    ("GET", "/v1/models", POSITIVE, 5),
    ("GET", "/v1/models/{model_id}", POSITIVE, 60),
    ("GET", "/healthz", POSITIVE, 5),
    ("GET", "/readyz", POSITIVE, 5),
    ("GET", "/admin/pool", POSITIVE, 5),
    ("POST", "/admin/refresh", POSITIVE, 3),
    ("POST", "/admin/probe", POSITIVE, 20),
    ("POST", "/admin/probe", NEGATIVE, 20),
]
LISTED = {f"{method} {path}" for method, path, _, _ in RUNS}


@pytest.fixture(scope="module")
def gateway(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    from turnout.config import Settings

    settings = Settings(
        sandbox="off", openrouter_base_url=sandbox.base_url, openrouter_api_key=OPENROUTER_TEST_KEY,
        data_dir=tmp_path_factory.mktemp("data"), api_keys=[CLIENT_KEY], admin_key=ADMIN_KEY,
        max_body_bytes=256 * 1024,
        timeouts={"first_byte_s": 3, "stream_first_token_s": 3, "stream_idle_s": 3, "request_deadline_s": 6},
        retries={"backoff_base_s": 0.01},
        pool={"health": {"enabled": False},
              "free_tier": {"requests_per_minute": 1_000_000, "requests_per_day": 1_000_000}},
    )
    gw = LiveGateway(settings).start()
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def gateway_schema(gateway: LiveGateway) -> Any:
    schema = schemathesis.openapi.from_url(f"{gateway.url}/openapi.json", timeout=10)
    assert {op.ok().label for op in schema.get_all_operations()} >= LISTED
    return schema


def with_known_model(case: Any, model: str | None) -> Any:
    """Point some generated bodies at a real alias, so they pass validation and reach the sandbox."""
    if model is not None and isinstance(case.body, dict) and isinstance(case.body.get("model"), str):
        case.body["model"] = model
    return case


# schemathesis.pytest.from_fixture (the lazy loader) does not run on pytest 9 (it sets Function._nodeid), so
# each operation's case strategy is driven by Hypothesis directly; the schema still comes from the live gateway.
@pytest.mark.parametrize(("method", "path", "mode", "examples"), RUNS,
                         ids=[f"{m} {p} {mode.value}" for m, p, mode, _ in RUNS])
def test_generated_requests_get_no_5xx_no_hang_and_openai_shaped_errors(
    gateway_schema: Any, method: str, path: str, mode: schemathesis.GenerationMode, examples: int
) -> None:
    operation = gateway_schema[path][method]
    statuses = fuzz(operation, mode=mode, examples=examples)
    if mode is POSITIVE and operation.body:
        assert statuses[200], f"no generated request got through to the sandbox: {dict(statuses)}"


def test_operations_added_later_are_fuzzed_too(gateway_schema: Any) -> None:
    for result in gateway_schema.get_all_operations():
        operation = result.ok()
        if operation.label not in LISTED:
            fuzz(operation, mode=POSITIVE, examples=10)


def fuzz(operation: Any, *, mode: schemathesis.GenerationMode, examples: int) -> Counter[int]:
    """Run `examples` generated cases against the live gateway; return the statuses seen."""
    statuses: Counter[int] = Counter()
    strategy = operation.as_strategy(generation_mode=mode)
    if mode is POSITIVE and operation.body:
        strategy = st.builds(with_known_model, strategy, st.sampled_from([*KNOWN_MODELS, None]))

    @settings(max_examples=examples, deadline=None, database=None, print_blob=True,
              phases=[Phase.explicit, Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case: Any) -> None:
        # The admin key is also a client key, so every route is reached past auth.
        response = case.call(headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=REQUEST_TIMEOUT_S)
        statuses[response.status_code] += 1
        if case.path.startswith("/v1/messages"):
            assert_no_5xx_and_anthropic_shaped(case, response)
        else:
            assert_no_5xx_and_openai_shaped(case, response)

    check()
    return statuses


def assert_no_5xx_and_openai_shaped(case: Any, response: Any) -> None:
    status = response.status_code
    where = f"{case.method} {case.formatted_path} -> {status}: {response.text[:500]}"
    assert status < 500, where
    if status >= 400:
        error = response.json().get("error")
        assert isinstance(error, dict) and set(error) == {"message", "type", "param", "code"}, where
        assert isinstance(error["message"], str) and error["message"], where
        assert isinstance(error["type"], str) and error["type"], where
        assert error["param"] is None or isinstance(error["param"], str), where
        assert error["code"] is None or isinstance(error["code"], str), where


def assert_no_5xx_and_anthropic_shaped(case: Any, response: Any) -> None:
    status = response.status_code
    where = f"{case.method} {case.formatted_path} -> {status}: {response.text[:500]}"
    assert status < 500, where
    if status >= 400:
        payload = response.json()
        assert payload.get("type") == "error" and set(payload["error"]) == {"type", "message"}, where
        assert isinstance(payload["error"]["message"], str) and payload["error"]["message"], where


def test_wrong_key_gets_openai_shaped_401_everywhere(gateway: LiveGateway) -> None:
    for method, path in [("POST", "/v1/chat/completions"), ("GET", "/v1/models"), ("GET", "/v1/models/auto"),
                         ("GET", "/admin/pool"), ("POST", "/admin/refresh")]:
        resp = httpx.request(method, f"{gateway.url}{path}", json={}, timeout=REQUEST_TIMEOUT_S,
                             headers={"Authorization": "Bearer wrong"})
        assert resp.status_code == 401, (method, path, resp.text)
        assert set(resp.json()["error"]) == {"message", "type", "param", "code"}
