"""Item 8: a wrong-shaped persisted pool never stops the start while OpenRouter is down."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.security.recorder import Recorder
from turnout.sandbox import FaultPlan

DEPLOYMENT = {"id": "or-1", "model": "z-ai/glm-5.2:free", "provider": "openrouter", "upstream_model": "z-ai/glm-5.2:free",
              "wire": "openai", "api_base": "", "credential": "openrouter", "tier": "free"}
MEMBER = {"deployment_id": "or-1", "rank": 1, "weight": 1}


def _pool(**changes: Any) -> Any:
    return {"built_at": 1.0, "source": "live", "degraded_reason": None, "deployments": [DEPLOYMENT],
            "groups": [{"name": "free", "kind": "alias", "members": [MEMBER], "fallbacks": [],
                        "context_window_fallbacks": []}], **changes}


BROKEN = {
    "a list": [],
    "wrong shape": {"deployments": {"or-1": 1}, "groups": 5},
    "deep nesting": "[" * 5000 + "]" * 5000,
    "member without a deployment": _pool(deployments=[]),
    "context_length huge": _pool(deployments=[{**DEPLOYMENT, "context_length": "huge"}]),
    "unknown wire": _pool(deployments=[{**DEPLOYMENT, "wire": "carrier-pigeon"}]),
    "not json": "{\"deployments\": [",
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_a_broken_persisted_pool_starts_from_static_deployments(start_gateway: Callable[..., Any], sandbox: Any,
                                                                 upstream: Recorder, tmp_path: Path,
                                                                 name: str) -> None:
    data_dir = tmp_path / "persisted"
    data_dir.mkdir()
    content = BROKEN[name]
    (data_dir / "pool.json").write_text(content if isinstance(content, str) else json.dumps(content))
    sandbox.server.set_plan(FaultPlan(catalogue_error=500))
    gw = start_gateway(data_dir=data_dir, pool={"health": {"enabled": False}},
                       deployments=[{"name": "local", "model": "openai/local", "api_base": upstream.base_url,
                                     "wire": "openai"}])
    ready = httpx.get(f"{gw.url}/readyz", timeout=10).json()
    assert ready["source"] == "static" and ready["status"] == "degraded"
    assert "persisted pool is unusable" in ready["reason"] and "static deployments only" in ready["reason"]
    resp = httpx.post(f"{gw.url}/v1/chat/completions", timeout=30,
                      json={"model": "local", "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 200, resp.text


def test_a_good_persisted_pool_is_served(start_gateway: Callable[..., Any], sandbox: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "persisted"
    data_dir.mkdir()
    # A persisted pool is served only for the OpenRouter address it was built for (issue 14).
    (data_dir / "pool.json").write_text(json.dumps(_pool(deployments=[{**DEPLOYMENT, "api_base": sandbox.base_url}])))
    sandbox.server.set_plan(FaultPlan(catalogue_error=500))
    gw = start_gateway(data_dir=data_dir, pool={"health": {"enabled": False}})
    ready = httpx.get(f"{gw.url}/readyz", timeout=10).json()
    assert ready["source"] == "persisted" and "free" in gw.state.holder.current.pool.groups
