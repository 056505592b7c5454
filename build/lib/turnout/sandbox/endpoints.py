"""Synthesised `GET /models/{author}/{slug}/endpoints` answers.

The static part (which providers host a model, their prices and base
latency) is a pure function of the model id, so every run sees the same
providers.  Health numbers (status, uptime, latency, throughput) follow the
model's current faults, so a gateway reading health sees what the plan does.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from turnout.sandbox.faults import ModelFaults
from turnout.sandbox.model_list import ModelInfo

Provider = tuple[str, str]  # (provider_name, tag)

_FIRST_PARTY: dict[str, tuple[Provider, ...]] = {
    "openai": (("OpenAI", "openai"), ("Azure", "azure")),
    "anthropic": (
        ("Anthropic", "anthropic"),
        ("Amazon Bedrock", "amazon-bedrock"),
        ("Google Vertex", "google-vertex"),
    ),
    "google": (("Google AI Studio", "google-ai-studio"), ("Google Vertex", "google-vertex")),
    "x-ai": (("xAI", "xai"),),
    "mistralai": (("Mistral", "mistral"),),
    "deepseek": (("DeepSeek", "deepseek"),),
    "moonshotai": (("Moonshot AI", "moonshotai"),),
    "qwen": (("Alibaba", "alibaba"),),
    "z-ai": (("Z.AI", "z-ai"),),
    "cohere": (("Cohere", "cohere"),),
    "amazon": (("Amazon Bedrock", "amazon-bedrock"),),
    "minimax": (("Minimax", "minimax"),),
    "perplexity": (("Perplexity", "perplexity"),),
}
_HOSTS: tuple[Provider, ...] = (
    ("DeepInfra", "deepinfra"),
    ("Together", "together"),
    ("Fireworks", "fireworks"),
    ("Novita", "novita"),
    ("Chutes", "chutes"),
    ("Parasail", "parasail"),
    ("Nebius AI Studio", "nebius"),
    ("SiliconFlow", "siliconflow"),
    ("Baseten", "baseten"),
    ("Groq", "groq"),
    ("Cerebras", "cerebras"),
    ("GMICloud", "gmicloud"),
)
_QUANTIZATIONS = ("unknown", "fp8", "bf16", "fp4", "int4")
_PRICE_MARKUPS = (1.0, 1.15, 1.3, 1.5)


def _hash(*parts: str) -> int:
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _fraction(*parts: str) -> float:
    return _hash(*parts) / 2**64


def providers_for(model_id: str) -> list[Provider]:
    """One to three providers, the same for a given id on every run."""
    author = model_id.lstrip("~").split("/", 1)[0]
    first = _FIRST_PARTY.get(author, ())
    if model_id.endswith(":free"):
        first = ()  # free variants are served by hosts, not the lab itself
    h = _hash(model_id, "providers")
    count = 1 + h % 3
    start = (h >> 8) % len(_HOSTS)
    hosts = [_HOSTS[(start + i) % len(_HOSTS)] for i in range(count)]
    return [*first, *hosts][:count]


def primary_provider(model_id: str) -> str:
    return providers_for(model_id)[0][0]


def endpoints_body(
    model: ModelInfo, faults: ModelFaults, *, authenticated: bool
) -> dict[str, Any]:
    entry = model.entry
    architecture = entry.get("architecture") or {}
    endpoints = [
        _endpoint(model, faults, provider, rank=rank, authenticated=authenticated)
        for rank, provider in enumerate(providers_for(model.id))
    ]
    return {
        "data": {
            "id": model.id,
            "name": entry.get("name", model.id),
            "created": entry.get("created", 0),
            "description": entry.get("description", ""),
            "architecture": {
                "tokenizer": architecture.get("tokenizer", "Other"),
                "instruct_type": architecture.get("instruct_type"),
                "modality": architecture.get("modality", "text->text"),
                "input_modalities": architecture.get("input_modalities", ["text"]),
                "output_modalities": architecture.get("output_modalities", ["text"]),
            },
            "endpoints": endpoints,
        }
    }


def _endpoint(
    model: ModelInfo,
    faults: ModelFaults,
    provider: Provider,
    *,
    rank: int,
    authenticated: bool,
) -> dict[str, Any]:
    name, tag = provider
    entry = model.entry
    top = entry.get("top_provider") or {}
    key = f"{model.id}|{tag}"
    return {
        "name": f"{name} | {model.canonical_slug}",
        "model_id": model.id,
        "model_name": entry.get("name", model.id),
        "context_length": model.context_length or top.get("context_length"),
        "pricing": _pricing(entry.get("pricing") or {}, key=key, rank=rank),
        "provider_name": name,
        "tag": tag,
        "quantization": _QUANTIZATIONS[_hash(key, "quant") % len(_QUANTIZATIONS)],
        "max_completion_tokens": top.get("max_completion_tokens"),
        "max_prompt_tokens": None,
        "supported_parameters": list(entry.get("supported_parameters") or []),
        "status": faults.endpoint_status,
        **_uptimes(faults, key),
        "supports_implicit_caching": False,
        "supports_voice_cloning": False,
        "latency_last_30m": _latency(faults, key) if authenticated else None,
        "throughput_last_30m": _throughput(faults, key) if authenticated else None,
    }


def _pricing(pricing: dict[str, Any], *, key: str, rank: int) -> dict[str, Any]:
    markup = 1.0 if rank == 0 else _PRICE_MARKUPS[_hash(key, "price") % len(_PRICE_MARKUPS)]
    out: dict[str, Any] = {}
    for name, value in pricing.items():
        out[name] = _scaled_price(value, markup) if name in ("prompt", "completion") else value
    out["discount"] = 0
    return out


def _scaled_price(value: Any, markup: float) -> Any:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    if number <= 0 or markup == 1.0:
        return value
    return format(Decimal(f"{number * markup:.6g}"), "f")


def _uptimes(faults: ModelFaults, key: str) -> dict[str, float | None]:
    windows = {"uptime_last_30m": 0.6, "uptime_last_5m": 1.0, "uptime_last_1d": 0.4}
    if faults.explicit("uptime"):
        return {name: faults.uptime for name in windows}
    base = 100.0 * (1.0 - faults.failure_rate)
    return {
        name: max(0.0, base - spread * _fraction(key, name)) for name, spread in windows.items()
    }


def _latency(faults: ModelFaults, key: str) -> dict[str, float] | None:
    if faults.explicit("latency_p50_ms"):
        p50 = faults.latency_p50_ms
    else:
        base = 300 + 2200 * _fraction(key, "latency")
        p50 = round(base + faults.latency_ms + faults.first_token_delay_ms)
    return None if p50 is None else _percentiles(p50, (1.0, 1.5, 2.2, 5.0))


def _throughput(faults: ModelFaults, key: str) -> dict[str, float] | None:
    if faults.explicit("throughput_p50"):
        p50 = faults.throughput_p50
    else:
        p50 = round(20 + 130 * _fraction(key, "throughput"))
        if faults.chunk_delay_ms > 0:
            p50 = min(p50, max(1, round(1000 / faults.chunk_delay_ms)))
    return None if p50 is None else _percentiles(p50, (1.0, 1.2, 1.35, 1.6))


def _percentiles(p50: float, factors: tuple[float, float, float, float]) -> dict[str, float]:
    return {
        label: round(p50 * factor, 2)
        for label, factor in zip(("p50", "p75", "p90", "p99"), factors, strict=True)
    }
