"""Each fault in the plan does what it says, over real HTTP."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import httpx
import pytest

from turnout.sandbox import FaultPlan, ModelFaults, SandboxServer

from .helpers import FREE_MODEL, PAID_MODEL, chat_body, post_chat, read_sse


def only(model: str, **faults: object) -> FaultPlan:
    return FaultPlan(models={model: ModelFaults.model_validate(faults)})


@pytest.mark.asyncio
async def test_error_rate_uses_error_codes(
    sb_client: httpx.AsyncClient, sandbox_server: SandboxServer
) -> None:
    sandbox_server.set_plan(only(PAID_MODEL, error_rate=1.0, error_codes=[503]))
    resp = await post_chat(sb_client, PAID_MODEL)
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == 503
    assert sandbox_server.calls[-1].outcome == "503"
    assert (await post_chat(sb_client, FREE_MODEL)).status_code == 200  # other models unaffected


@pytest.mark.asyncio
async def test_provider_rate_limit_with_retry_after(
    sb_client: httpx.AsyncClient, sandbox_server: SandboxServer
) -> None:
    sandbox_server.set_plan(only(FREE_MODEL, rate_limit_rate=1.0, retry_after_s=3))
    resp = await post_chat(sb_client, FREE_MODEL)
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "3"
    error = resp.json()["error"]
    assert error["message"] == "Provider returned error"
    assert error["metadata"]["raw"].startswith(f"{FREE_MODEL} is temporarily rate-limited upstream")
    assert error["metadata"]["provider_name"] == resp.json()["error"]["metadata"]["provider_name"]
    sandbox_server.set_plan(only(FREE_MODEL, rate_limit_rate=1.0))
    assert "Retry-After" not in (await post_chat(sb_client, FREE_MODEL)).headers


@pytest.mark.asyncio
async def test_reset_drops_the_connection(
    sb_client: httpx.AsyncClient, sandbox_server: SandboxServer
) -> None:
    sandbox_server.set_plan(only(PAID_MODEL, reset_rate=1.0))
    with pytest.raises(httpx.TransportError):
        await post_chat(sb_client, PAID_MODEL)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.post(
                f"{sandbox_server.base_url}/chat/completions",
                json=chat_body(PAID_MODEL),
                headers={"Authorization": "Bearer x"},
            ) as resp:
                await resp.read()
    assert [c.outcome for c in sandbox_server.calls] == ["reset", "reset"]
    assert (await post_chat(sb_client, FREE_MODEL)).status_code == 200


@pytest.mark.asyncio
async def test_hang_times_out_and_stop_is_quick(sandbox_server: SandboxServer) -> None:
    sandbox_server.set_plan(only(PAID_MODEL, hang_rate=1.0))
    async with httpx.AsyncClient(base_url=sandbox_server.base_url, timeout=0.3) as http:
        with pytest.raises(httpx.ReadTimeout):
            await post_chat_with_key(http, PAID_MODEL)
        # a hang still open while the server stops must not delay the stop
        pending = asyncio.create_task(post_chat_with_key(http, PAID_MODEL))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await sandbox_server.stop()
        assert time.monotonic() - started < 1.0
        with pytest.raises(httpx.TransportError):
            await pending
    assert [c.outcome for c in sandbox_server.calls] == ["hang", "hang"]


async def post_chat_with_key(http: httpx.AsyncClient, model: str) -> httpx.Response:
    return await http.post(
        "/chat/completions", json=chat_body(model), headers={"Authorization": "Bearer x"}
    )


@pytest.mark.asyncio
async def test_latency_delays_the_answer(
    sb_client: httpx.AsyncClient, sandbox_server: SandboxServer
) -> None:
    sandbox_server.set_plan(only(PAID_MODEL, latency_ms=120))
    started = time.monotonic()
    assert (await post_chat(sb_client, PAID_MODEL)).status_code == 200
    assert time.monotonic() - started >= 0.12


@pytest.mark.asyncio
async def test_stream_cut_closes_midway(
    sb_client: httpx.AsyncClient, sandbox_server: SandboxServer
) -> None:
    sandbox_server.set_plan(only(PAID_MODEL, stream_cut_after=2))
    received: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        async with sb_client.stream(
            "POST", "/chat/completions", json=chat_body(PAID_MODEL, stream=True)
        ) as resp:
            async for line in resp.aiter_lines():
                received.append(line)
    assert sum(line.startswith("data: ") for line in received) == 2
    assert sandbox_server.calls[-1].outcome == "stream_cut"


@pytest.mark.asyncio
async def test_stream_stall_keeps_connection_silent(sandbox_server: SandboxServer) -> None:
    sandbox_server.set_plan(only(PAID_MODEL, stream_stall_after=1))
    received: list[str] = []
    timeout = httpx.Timeout(5.0, read=0.3)
    async with httpx.AsyncClient(base_url=sandbox_server.base_url, timeout=timeout) as http:
        with pytest.raises(httpx.ReadTimeout):
            async with http.stream(
                "POST",
                "/chat/completions",
                json=chat_body(PAID_MODEL, stream=True),
                headers={"Authorization": "Bearer x"},
            ) as resp:
                async for line in resp.aiter_lines():
                    received.append(line)
    assert next(line for line in received if line.startswith("data: ")).startswith("data: {")
    assert sum(line.startswith("data: ") for line in received) == 1
    assert sandbox_server.calls[-1].outcome == "stream_stall"


@pytest.mark.asyncio
async def test_stream_error_chunk(
    sb_client: httpx.AsyncClient, sandbox_server: SandboxServer
) -> None:
    sandbox_server.set_plan(only(PAID_MODEL, stream_error_after=2))
    _, payloads = await read_sse(sb_client, chat_body(PAID_MODEL))
    assert len(payloads) == 4 and payloads[-1] == "[DONE]"
    error = payloads[2]
    assert error["error"]["code"] == 502
    assert error["choices"][0]["finish_reason"] == "error"
    assert sandbox_server.calls[-1].outcome == "stream_error"


@pytest.mark.asyncio
async def test_malformed_chunk_then_no_done(
    sb_client: httpx.AsyncClient, sandbox_server: SandboxServer
) -> None:
    sandbox_server.set_plan(only(PAID_MODEL, malformed_after=3))
    _, payloads = await read_sse(sb_client, chat_body(PAID_MODEL))
    assert len(payloads) == 4
    assert "malformed" in payloads[3]
    assert "[DONE]" not in payloads


@pytest.mark.asyncio
async def test_no_done_ends_after_usage(
    sb_client: httpx.AsyncClient, sandbox_server: SandboxServer
) -> None:
    sandbox_server.set_plan(only(PAID_MODEL, no_done=True))
    _, payloads = await read_sse(sb_client, chat_body(PAID_MODEL))
    assert payloads[-1]["choices"] == [] and "usage" in payloads[-1]
    assert sandbox_server.calls[-1].outcome == "no_done"


@pytest.mark.asyncio
async def test_delays_in_streams(
    sb_client: httpx.AsyncClient, sandbox_server: SandboxServer
) -> None:
    sandbox_server.set_plan(only(PAID_MODEL, first_token_delay_ms=100, chunk_delay_ms=10))
    started = time.monotonic()
    _, payloads = await read_sse(sb_client, chat_body(PAID_MODEL))
    assert payloads[-1] == "[DONE]"
    assert time.monotonic() - started >= 0.1 + 0.01 * (len(payloads) - 2)


@pytest.mark.asyncio
async def test_error_200_json_and_stream(
    sb_client: httpx.AsyncClient, sandbox_server: SandboxServer
) -> None:
    sandbox_server.set_plan(only(PAID_MODEL, error_200_rate=1.0, error_codes=[502]))
    resp = await post_chat(sb_client, PAID_MODEL)
    assert resp.status_code == 200
    assert resp.json()["error"]["code"] == 502 and "choices" not in resp.json()
    _, payloads = await read_sse(sb_client, chat_body(PAID_MODEL))
    assert payloads[0]["error"]["message"] == "Provider returned error"
    assert payloads[0]["choices"][0]["finish_reason"] == "error"
    assert payloads[1:] == ["[DONE]"]
    assert [c.outcome for c in sandbox_server.calls] == ["error_200", "error_200"]


@pytest.mark.asyncio
async def test_context_length_error_in_real_wording(
    sb_client: httpx.AsyncClient, sandbox_server: SandboxServer
) -> None:
    sandbox_server.set_plan(only(PAID_MODEL, context_length=10))
    resp = await post_chat(sb_client, PAID_MODEL, text="x" * 200, max_tokens=5)
    assert resp.status_code == 400
    assert resp.json()["error"]["message"].startswith(
        "This endpoint's maximum context length is 10 tokens. "
        "However, you requested about 55 tokens (50 of text input, 5 in the output)."
    )
    assert (await post_chat(sb_client, PAID_MODEL, text="short")).status_code == 200


@pytest.mark.asyncio
async def test_content_filter_and_reasoning_only(
    sb_client: httpx.AsyncClient, sandbox_server: SandboxServer
) -> None:
    sandbox_server.set_plan(
        FaultPlan(
            models={
                PAID_MODEL: ModelFaults(content_filter=True),
                FREE_MODEL: ModelFaults(reasoning_only=True),
            }
        )
    )
    filtered = (await post_chat(sb_client, PAID_MODEL)).json()["choices"][0]
    assert filtered["finish_reason"] == "content_filter"
    assert filtered["message"]["content"] == ""
    thinking = (await post_chat(sb_client, FREE_MODEL)).json()
    message = thinking["choices"][0]["message"]
    assert message["content"] == "" and message["reasoning"].startswith("Hello from")
    usage = thinking["usage"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] == usage["completion_tokens"]
    _, payloads = await read_sse(sb_client, chat_body(FREE_MODEL))
    reasoning = "".join(
        p["choices"][0]["delta"].get("reasoning") or "" for p in payloads[:-1] if p["choices"]
    )
    assert reasoning == message["reasoning"]


@pytest.mark.asyncio
async def test_fail_next_is_deterministic(
    sb_client: httpx.AsyncClient, sandbox_server: SandboxServer
) -> None:
    sandbox_server.set_plan(only(PAID_MODEL, fail_next=2, fail_next_code=429, retry_after_s=1.5))
    codes = [(await post_chat(sb_client, PAID_MODEL)).status_code for _ in range(3)]
    assert codes == [429, 429, 200]
    assert sandbox_server.calls[0].outcome == "429"
    sandbox_server.set_plan(only(PAID_MODEL, fail_next=1, fail_next_code=0))
    with pytest.raises(httpx.TransportError):
        await post_chat(sb_client, PAID_MODEL)
    assert (await post_chat(sb_client, PAID_MODEL)).status_code == 200


@pytest.mark.asyncio
async def test_same_seed_same_outcomes(sandbox_server: SandboxServer) -> None:
    plan = FaultPlan(default=ModelFaults(error_rate=0.3, rate_limit_rate=0.3), seed=42)

    async def run() -> list[int]:
        sandbox_server.set_plan(plan)
        async with httpx.AsyncClient(
            base_url=sandbox_server.base_url, headers={"Authorization": "Bearer x"}
        ) as http:
            return [(await post_chat(http, PAID_MODEL)).status_code for _ in range(30)]

    first, second = await run(), await run()
    assert first == second
    assert {200, 429, 500} <= set(first)


@pytest.mark.asyncio
async def test_endpoints_reflect_faults(
    sb_client: httpx.AsyncClient, sandbox_server: SandboxServer
) -> None:
    plan = FaultPlan(
        models={
            PAID_MODEL: ModelFaults(error_rate=0.5),
            FREE_MODEL: ModelFaults.model_validate(
                {"endpoint_status": None, "uptime": None, "latency_p50_ms": 900}
            ),
            "openai/gpt-4o-mini": ModelFaults(endpoint_status=-2, uptime=42.0),
            "openai/o3": ModelFaults(endpoints_error=503),
        }
    )
    sandbox_server.set_plan(plan)
    flaky = (await sb_client.get("/models/openai/gpt-4o/endpoints")).json()["data"]["endpoints"]
    assert all(45 <= e["uptime_last_30m"] <= 50 for e in flaky)
    free = (await sb_client.get(f"/models/{FREE_MODEL}/endpoints")).json()["data"]["endpoints"]
    assert all(e["status"] is None and e["uptime_last_1d"] is None for e in free)
    assert free[0]["latency_last_30m"]["p50"] == 900
    mini = (await sb_client.get("/models/openai/gpt-4o-mini/endpoints")).json()["data"]
    assert {(e["status"], e["uptime_last_5m"]) for e in mini["endpoints"]} == {(-2, 42.0)}
    assert (await sb_client.get("/models/openai/o3/endpoints")).status_code == 503
