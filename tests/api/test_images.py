"""Image generation: the `images` alias, POST /v1/images/generations (the OpenAI SDK as the client),
chat completions with `modalities: ["image", "text"]`, and the sandbox's real PNGs."""

from __future__ import annotations

import base64
import copy
import json
import logging
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import LiveGateway
from tests.observability.test_metrics import scrape, value, wait_for

CATALOGUE = Path(__file__).parents[2] / "turnout/data/openrouter/models-2026-08-19.json"


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and raw scanlines of an 8-bit RGB PNG, checking every chunk's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, kind
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 2) and b"IEND" in chunks
    raw = zlib.decompress(chunks[b"IDAT"])
    assert len(raw) == height * (1 + 3 * width)
    return width, height, raw


def free_image_model() -> dict[str, Any]:
    """A free twin of a catalogue image model (the snapshot has none): `images` must seat it first."""
    entries = json.loads(CATALOGUE.read_text())["data"]
    base = next(e for e in entries if e["id"] == "google/gemini-2.5-flash-image")
    entry = copy.deepcopy(base)
    entry.update(id="google/gemini-2.5-flash-image:free", canonical_slug="google/gemini-2.5-flash-image:free")
    entry["pricing"] = {k: "0" for k in entry["pricing"]}
    return entry


@pytest.fixture
def gateway(start_gateway: Callable[..., LiveGateway], sandbox: Any) -> LiveGateway:
    sandbox.server.add_model(free_image_model())
    return start_gateway(pool={"health": {"enabled": False}})


@pytest.fixture
def client(gateway: LiveGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)


def image_models(gateway: LiveGateway) -> set[str]:
    pool = gateway.state.holder.current.pool
    return {d.model for d in pool.deployments.values() if d.capabilities.image_output}


def test_images_alias_holds_image_models_free_first(gateway: LiveGateway) -> None:
    listing = {m["id"]: m for m in httpx.get(f"{gateway.url}/v1/models", timeout=10).json()["data"]}
    images = listing["images"]
    assert images["capabilities"]["image_output"] is True
    assert images["members"][0] == "google/gemini-2.5-flash-image:free"
    outputs = {e["id"]: e["architecture"]["output_modalities"]
               for e in [free_image_model(), *json.loads(CATALOGUE.read_text())["data"]]}
    assert all("image" in outputs[m] for m in images["members"]) and len(images["members"]) == 5
    for alias in ("auto", "free", "paid", "vision", "long"):
        assert listing[alias]["capabilities"]["image_output"] is False
        assert not set(listing[alias]["members"]) & set(images["members"])
    assert listing["google/gemini-2.5-flash-image:free"]["capabilities"]["image_output"] is True


def test_openai_sdk_generates_b64_and_url_images(client: openai.OpenAI, gateway: LiveGateway) -> None:
    result = client.images.generate(model="images", prompt="a red fox in the snow", response_format="b64_json")
    assert len(result.data) == 1 and result.data[0].b64_json
    width, height, _ = decode_png(base64.b64decode(result.data[0].b64_json))
    assert (width, height) == (32, 32)
    assert result.usage is not None and result.usage.output_tokens > 0

    urls = client.images.generate(model="images", prompt="a red fox in the snow", response_format="url", n=2)
    assert len(urls.data) == 2
    for image in urls.data:
        assert image.url is not None and image.url.startswith("data:image/png;base64,")
        # the same prompt draws the same picture
        assert base64.b64decode(image.url.partition(",")[2]) == base64.b64decode(result.data[0].b64_json)
    other = client.images.generate(prompt="a blue whale", size="1792x1024")  # model defaults to `images`
    assert other.data[0].b64_json != result.data[0].b64_json


def test_the_request_reaches_the_upstream_as_openrouter_image_chat(client: openai.OpenAI, sandbox: Any,
                                                                   gateway: LiveGateway) -> None:
    raw = client.images.with_raw_response.generate(prompt="a lighthouse", size="1792x1024")
    served = raw.headers["x-turnout-model"]
    assert served in image_models(gateway)
    call = sandbox.server.calls_for(served)[-1]
    assert call.body["modalities"] == ["image", "text"]
    assert call.body["image_config"] == {"aspect_ratio": "16:9"}
    assert call.body["messages"] == [{"role": "user", "content": "a lighthouse"}]


def test_chat_completions_with_image_modalities_answer_message_images(client: openai.OpenAI,
                                                                      gateway: LiveGateway) -> None:
    completion = client.chat.completions.create(
        model="images", messages=[{"role": "user", "content": "draw a cat"}],
        extra_body={"modalities": ["image", "text"]})
    message = completion.choices[0].message
    images = (message.model_extra or {})["images"]
    url = images[0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    decode_png(base64.b64decode(url.partition(",")[2]))
    assert completion.model in image_models(gateway)

    chunks = list(client.chat.completions.create(
        model="images", messages=[{"role": "user", "content": "draw a cat"}], stream=True,
        extra_body={"modalities": ["image", "text"]}))
    streamed = [img for c in chunks for ch in c.choices for img in (ch.delta.model_extra or {}).get("images", [])]
    assert streamed and streamed[0]["image_url"]["url"] == url


def test_image_modalities_never_reach_a_text_model(client: openai.OpenAI, sandbox: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "draw"}],
                                       extra_body={"modalities": ["image", "text"]})
    assert caught.value.code == "unsupported_request" and "image output" in caught.value.message
    assert not sandbox.server.calls


def test_a_failing_image_model_fails_over_to_the_next(client: openai.OpenAI, sandbox: Any,
                                                      gateway: LiveGateway) -> None:
    first = "google/gemini-2.5-flash-image:free"
    sandbox.server.set_plan({"models": {first: {"error_rate": 1.0, "error_codes": [503]}}})
    raw = client.images.with_raw_response.generate(prompt="a mountain")
    assert raw.headers["x-turnout-model"] != first
    assert int(raw.headers["x-turnout-attempts"]) >= 2
    decode_png(base64.b64decode(raw.parse().data[0].b64_json))


@pytest.mark.parametrize(("body", "param"), [
    ({}, "prompt"),
    ({"prompt": ""}, "prompt"),
    ({"prompt": "x", "n": 0}, "n"),
    ({"prompt": "x", "response_format": "gif"}, "response_format"),
    ({"prompt": "x", "size": "huge"}, "size"),
    ({"prompt": "x", "size": "1000x1"}, "size"),
])
def test_bad_image_requests_get_openai_errors(gateway: LiveGateway, body: dict[str, Any], param: str) -> None:
    response = httpx.post(f"{gateway.url}/v1/images/generations", json=body, timeout=10)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_an_unknown_image_model_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.images.generate(model="no-such-images", prompt="x")


def request_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The request lines of image requests: the images record's, or a generic route line for the path."""
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "turnout.requests"]
    return [line for line in lines if line.get("api") == "images" or line.get("path") == "/v1/images/generations"]


def images_requests(gw: LiveGateway, status_class: str) -> float:
    """turnout_requests_total of images requests of one status class, whatever their alias label."""
    return sum(v for (name, labels), v in scrape(gw).items() if name == "turnout_requests_total"
               and ("api", "images") in labels and ("status_class", status_class) in labels)


def wait_until(check: Callable[[], bool], within_s: float = 10) -> bool:
    """The meter closes just after the reply is sent."""
    deadline = time.monotonic() + within_s
    while not check() and time.monotonic() < deadline:
        time.sleep(0.02)
    return check()


def test_n_images_are_one_request_record_with_every_calls_attempts(
        client: openai.OpenAI, sandbox: Any, gateway: LiveGateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="turnout.requests")
    first = "google/gemini-2.5-flash-image:free"
    sandbox.server.set_plan({"models": {first: {"error_rate": 1.0, "error_codes": [503]}}})
    ok = {"api": "images", "alias": "images", "status_class": "2xx", "stream": "false"}
    before = value(gateway, "turnout_requests_total", **ok)
    retries = value(gateway, "turnout_retries_total", alias="images")
    raw = client.images.with_raw_response.generate(prompt="two foxes", n=2)
    assert len(raw.parse().data) == 2
    wait_for(gateway, before + 1, "turnout_requests_total", **ok)
    scraped = scrape(gateway)
    assert scraped[("turnout_requests_total", frozenset(ok.items()))] == before + 1
    # each call's first attempt is no retry: only the failed-over ones are
    attempts = int(raw.headers["x-turnout-attempts"])
    assert value(gateway, "turnout_retries_total", alias="images") - retries == attempts - 2
    gateway.stop()  # flushes the batched log lines
    lines = request_lines(caplog)
    assert len(lines) == 1, lines
    line = lines[0]
    assert (line["event"], line["api"], line["status"], line["reason"]) == ("request", "images", 200, "ok")
    assert line["requested"] == "images" and line["calls"] == 2
    # each call failed on the first model and was answered by the next: four attempts, one line
    outcomes = [a["outcome"] for a in line["attempts"]]
    assert len(outcomes) == int(raw.headers["x-turnout-attempts"]) >= 4
    assert outcomes.count("ok") == 2
    assert [a["model"] for a in line["attempts"]].count(first) == len(outcomes) - 2
    assert line["model"] == raw.headers["x-turnout-model"] and line["prompt_tokens"] > 0


@pytest.mark.parametrize(("body", "status", "code", "reason"), [
    ({"prompt": "x", "size": "1000x1"}, 400, None, "http_400"),  # refused by the route (an error with no code)
    ({"prompt": ""}, 400, "invalid_request", "invalid_request"),  # refused by the body's schema
    ({"prompt": "x", "model": "no-such-images"}, 404, "model_not_found", "model_not_found"),
])
def test_a_refused_image_request_is_one_record_with_its_status_and_reason(
        gateway: LiveGateway, caplog: pytest.LogCaptureFixture, body: dict[str, Any], status: int,
        code: str | None, reason: str) -> None:
    caplog.set_level(logging.INFO, logger="turnout.requests")
    response = httpx.post(f"{gateway.url}/v1/images/generations", json=body, timeout=10)
    assert response.status_code == status and response.json()["error"]["code"] == code
    assert wait_until(lambda: images_requests(gateway, "4xx") == 1)
    gateway.stop()
    lines = request_lines(caplog)
    assert len(lines) == 1, lines
    line = lines[0]
    assert (line["event"], line["api"], line["status"], line["reason"]) == ("request", "images", status, reason)
    assert line.get("error") == code and line["message"] == response.json()["error"]["message"]


def test_an_image_request_every_model_fails_is_one_record_listing_the_attempts(
        client: openai.OpenAI, sandbox: Any, gateway: LiveGateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="turnout.requests")
    members = httpx.get(f"{gateway.url}/v1/models/images", timeout=10).json()["members"]
    sandbox.server.set_plan({"models": {m: {"error_rate": 1.0, "error_codes": [503]} for m in members}})
    with pytest.raises(openai.APIStatusError) as caught:
        client.images.generate(prompt="a storm")
    status = caught.value.status_code
    assert status >= 500 and caught.value.body["code"]  # type: ignore[index]
    assert wait_until(lambda: images_requests(gateway, "5xx") == 1)
    gateway.stop()
    lines = request_lines(caplog)
    assert len(lines) == 1, lines
    line = lines[0]
    assert (line["api"], line["status"], line["reason"]) == ("images", status, caught.value.body["code"])  # type: ignore[index]
    assert line["attempts"] and {a["outcome"] for a in line["attempts"]} != {"ok"}


def test_named_keys_models_budget_and_usage_hold_for_images(start_gateway: Callable[..., LiveGateway],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A key's allowed models, daily budget and usage count images as they count chat (the paid
    image models of the catalogue: every image costs)."""
    monkeypatch.setenv("KEY_PAINTER", "sk-painter-0123456789")
    monkeypatch.setenv("KEY_TEXT_ONLY", "sk-text-only-0123456789")
    admin = "admin-key-0123456789"
    gw = start_gateway(admin_key=admin, pool={"health": {"enabled": False}}, keys=[
        {"name": "painter", "key_env": "KEY_PAINTER", "daily_budget_usd": 0.000001},
        {"name": "text-only", "key_env": "KEY_TEXT_ONLY", "models": ["auto"]}])

    def generate(key: str) -> httpx.Response:
        return httpx.post(f"{gw.url}/v1/images/generations", json={"prompt": "a lighthouse"},
                          headers={"Authorization": f"Bearer {key}"}, timeout=30)

    refused = generate("sk-text-only-0123456789")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_allowed"
    assert generate("sk-painter-0123456789").status_code == 200  # spends more than its $0.000001
    over = generate("sk-painter-0123456789")
    assert over.status_code == 429 and over.json()["error"]["code"] == "budget_exceeded"
    usage = httpx.get(f"{gw.url}/admin/usage", headers={"Authorization": f"Bearer {admin}"}, timeout=10).json()
    [painter] = [k for k in usage["keys"] if k["name"] == "painter"]
    assert painter["spent_today_usd"] > 0.000001
