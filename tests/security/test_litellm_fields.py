"""Item 1: on the LiteLLM path only OpenAI request fields reach `litellm.acompletion`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.security.recorder import Recorder
from turnout.upstream import litellm_internals
from turnout.upstream.litellm_call import OPENAI_CHAT_FIELDS


def test_the_allowlist_holds_no_litellm_kwarg() -> None:
    """A LiteLLM upgrade that adds a kwarg named like an OpenAI field shows up here."""
    import litellm

    own = set(inspect.signature(litellm.acompletion).parameters) - {"kwargs"}
    openai_in_signature = own & OPENAI_CHAT_FIELDS
    assert not OPENAI_CHAT_FIELDS & litellm_internals.per_call_kwargs()
    assert not OPENAI_CHAT_FIELDS & {"timeout", "deployment_id", "base_url", "api_version", "api_key", "model_list",
                                    "extra_headers", "shared_session", "enable_json_schema_validation"}
    assert openai_in_signature  # the check above compared real names


@pytest.fixture
def litellm_gateway(start_gateway: Callable[..., Any], upstream: Recorder,
                    monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("STATIC_KEY", "sk-static-operator-key")
    return start_gateway(deployments=[{"name": "translated", "model": "openai/some-model",
                                       "api_base": upstream.base_url, "wire": "litellm",
                                       "api_key_env": "STATIC_KEY"}],
                         pool={"health": {"enabled": False}})


def test_provider_specific_header_does_not_reach_the_upstream(litellm_gateway: Any, upstream: Recorder) -> None:
    body = {"model": "translated", "messages": [{"role": "user", "content": "hi"}],
            "provider_specific_header": {"custom_llm_provider": "openai",
                                         "extra_headers": {"Authorization": "Bearer attacker"}},
            "roles": {"user": {"pre_message": "x"}}, "initial_prompt_value": "INJECTED",
            "langfuse_host": "http://127.0.0.1:9", "use_litellm_proxy": True, "request_timeout": 0.001,
            "metadata": {"a": "b"}, "temperature": 0.5}
    for _ in range(3):
        resp = httpx.post(f"{litellm_gateway.url}/v1/chat/completions", json=body, timeout=60)
        assert resp.status_code == 200, resp.text
    seen = upstream.seen[-1]
    assert seen.headers["authorization"] == "Bearer sk-static-operator-key"
    assert "INJECTED" not in str(seen.body)
    assert seen.body["temperature"] == 0.5
    assert len(upstream.seen) == 3  # none benched, none lost
