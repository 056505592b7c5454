"""The OpenRouter catalogue: parse `GET /models`, classify each model, filter the pool.

`parse_catalogue` never raises on the payload: real catalogues carry unknown fields,
prices as strings or numbers, ``"-1"`` prices on meta routers, null context lengths and
missing sections. An entry that cannot become a model (not an object, no id, a duplicate
id) is counted in `Catalogue.skipped` with a reason.

Prices are USD per token. ``None`` means unknown (missing, unparsable or negative, as the
``"-1"`` of `openrouter/auto`); an unknown price is never free.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import httpx
import orjson

from turnout.config import PoolSettings
from turnout.pool.pacing import no_pause

ModelTier = Literal["free", "paid"]

META_ROUTER_IDS = frozenset({"openrouter/auto", "openrouter/free"})
MEDIA_OUTPUTS = frozenset({"image", "audio", "music", "video"})
# Classifiers that answer "safe"/"unsafe" rather than the prompt (Llama Guard, Nemotron
# Content Safety, gpt-oss-safeguard): never a chat model, even when they take images.
CLASSIFIER_TOKENS = frozenset({"guard", "safeguard"})


class CatalogueError(Exception):
    """The catalogue could not be fetched or was not a catalogue."""


@dataclass(frozen=True, slots=True)
class Benchmarks:
    """Artificial Analysis indices (roughly 0-100) as OpenRouter reports them."""

    intelligence: float | None = None
    coding: float | None = None
    agentic: float | None = None


@dataclass(frozen=True, slots=True)
class CatalogueModel:
    id: str
    canonical_slug: str
    name: str
    author: str
    created: float | None
    context_length: int | None
    max_completion_tokens: int | None
    prompt_price: float | None
    completion_price: float | None
    tier: ModelTier
    input_modalities: tuple[str, ...]
    output_modalities: tuple[str, ...]
    tokenizer: str | None
    expiration: float | None
    benchmarks: Benchmarks
    text_output: bool
    tools: bool
    vision: bool
    image_output: bool
    json_mode: bool
    reasoning: bool
    is_meta_router: bool
    is_media_generator: bool

    @property
    def price_known(self) -> bool:
        return self.prompt_price is not None and self.completion_price is not None


@dataclass(frozen=True, slots=True)
class SkippedEntry:
    index: int
    id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Catalogue:
    models: Mapping[str, CatalogueModel]
    skipped: tuple[SkippedEntry, ...] = ()
    fetched_at: float = field(default_factory=time.time)


# --- parsing -------------------------------------------------------------------------


def parse_catalogue(
    payload: Mapping[str, Any], *, now: float | None = None, pause: Callable[[], None] = no_pause
) -> Catalogue:
    """Every entry with an id becomes a `CatalogueModel`; the rest land in `skipped`.

    `pause` is called after each entry (see `turnout.pool.pacing`)."""
    fetched_at = time.time() if now is None else now
    entries = payload.get("data") if isinstance(payload, Mapping) else None
    if not isinstance(entries, list):
        return Catalogue(
            models=MappingProxyType({}),
            skipped=(SkippedEntry(index=-1, id=None, reason="payload has no 'data' list"),),
            fetched_at=fetched_at,
        )
    models: dict[str, CatalogueModel] = {}
    skipped: list[SkippedEntry] = []
    for index, entry in enumerate(entries):
        pause()
        model, reason = _parse_entry(entry)
        if model is None:
            skipped.append(SkippedEntry(index=index, id=_raw_id(entry), reason=reason))
        elif model.id in models:
            skipped.append(SkippedEntry(index=index, id=model.id, reason="duplicate id"))
        else:
            models[model.id] = model
    return Catalogue(models=MappingProxyType(models), skipped=tuple(skipped), fetched_at=fetched_at)


def _raw_id(entry: Any) -> str | None:
    if isinstance(entry, Mapping) and isinstance(entry.get("id"), str):
        return str(entry["id"])
    return None


def _parse_entry(entry: Any) -> tuple[CatalogueModel | None, str]:
    if not isinstance(entry, Mapping):
        return None, f"entry is {type(entry).__name__}, not an object"
    model_id = entry.get("id")
    if not isinstance(model_id, str) or not model_id.strip():
        return None, "missing or empty id"
    try:
        return parse_model(entry), ""
    except Exception as exc:  # a bad entry must never sink the catalogue
        return None, f"unparsable entry: {type(exc).__name__}: {exc}"


def parse_model(entry: Mapping[str, Any]) -> CatalogueModel:
    """One catalogue entry (with a string id) as a classified model."""
    model_id = str(entry["id"]).strip()
    arch = _mapping(entry.get("architecture"))
    inputs, outputs = _modalities(arch)
    params = frozenset(p for p in _list(entry.get("supported_parameters")) if isinstance(p, str))
    pricing = _mapping(entry.get("pricing"))
    top = _mapping(entry.get("top_provider"))
    prompt, completion = _price(pricing.get("prompt")), _price(pricing.get("completion"))
    tokenizer = arch.get("tokenizer") if isinstance(arch.get("tokenizer"), str) else None
    return CatalogueModel(
        id=model_id,
        canonical_slug=_str(entry.get("canonical_slug")) or model_id,
        name=_str(entry.get("name")) or model_id,
        author=model_id.partition("/")[0].lstrip("~") if "/" in model_id else "",
        created=_number(entry.get("created")),
        context_length=_positive_int(entry.get("context_length")) or _positive_int(top.get("context_length")),
        max_completion_tokens=_positive_int(top.get("max_completion_tokens"))
        or _positive_int(entry.get("max_completion_tokens")),
        prompt_price=prompt,
        completion_price=completion,
        tier=model_tier(model_id, prompt, completion),
        input_modalities=inputs,
        output_modalities=outputs,
        tokenizer=tokenizer,
        expiration=parse_timestamp(entry.get("expiration_date")),
        benchmarks=_benchmarks(entry.get("benchmarks")),
        text_output="text" in outputs,
        tools="tools" in params,
        vision="image" in inputs,
        image_output="image" in outputs,
        json_mode=bool(params & {"response_format", "structured_outputs"}),
        reasoning=bool(params & {"reasoning", "include_reasoning"}) or isinstance(entry.get("reasoning"), Mapping),
        is_meta_router=tokenizer == "Router" or model_id in META_ROUTER_IDS or model_id.startswith("openrouter/"),
        is_media_generator="text" not in outputs or bool(MEDIA_OUTPUTS & set(outputs)),
    )


def model_tier(model_id: str, prompt: float | None, completion: float | None) -> ModelTier:
    if model_id.endswith(":free") or (prompt == 0.0 and completion == 0.0):
        return "free"
    return "paid"


def _modalities(arch: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    inputs = _str_tuple(arch.get("input_modalities"))
    outputs = _str_tuple(arch.get("output_modalities"))
    modality = arch.get("modality")
    if isinstance(modality, str) and "->" in modality:
        left, _, right = modality.partition("->")
        inputs = inputs or tuple(part for part in left.split("+") if part)
        outputs = outputs or tuple(part for part in right.split("+") if part)
    # Without any architecture, assume the overwhelmingly common text->text.
    return inputs or ("text",), outputs or ("text",)


def _benchmarks(raw: Any) -> Benchmarks:
    aa = _mapping(_mapping(raw).get("artificial_analysis"))
    return Benchmarks(
        intelligence=_number(aa.get("intelligence_index")),
        coding=_number(aa.get("coding_index")),
        agentic=_number(aa.get("agentic_index")),
    )


def _price(raw: Any) -> float | None:
    value = _number(raw)
    if value is None or value < 0:
        return None
    return value


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool) or raw is None:
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _positive_int(raw: Any) -> int | None:
    value = _number(raw)
    return int(value) if value is not None and value > 0 else None


def parse_timestamp(raw: Any) -> float | None:
    """Epoch seconds from a number, an ISO date (start of that day, UTC) or datetime."""
    number = _number(raw)
    if number is not None:
        return number
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        parsed = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _mapping(raw: Any) -> Mapping[str, Any]:
    return raw if isinstance(raw, Mapping) else {}


def _list(raw: Any) -> Sequence[Any]:
    return raw if isinstance(raw, list) else []


def _str(raw: Any) -> str:
    return raw if isinstance(raw, str) else ""


def _str_tuple(raw: Any) -> tuple[str, ...]:
    return tuple(item.lower() for item in _list(raw) if isinstance(item, str))


# --- filtering -----------------------------------------------------------------------


def filter_reasons(
    model: CatalogueModel,
    *,
    settings: PoolSettings,
    now: float,
    allow: frozenset[str],
    block: frozenset[str],
) -> list[str]:
    """Why `model` may not join the pool; empty means eligible.

    `allow` and `block` are extra ids (from `allowlist_file` / `blocklist_file`), joined
    with `settings.allowlist` / `settings.blocklist`. Tool support is not checked here:
    aliases with `require_tools` apply it.
    """
    allowed = allow | frozenset(settings.allowlist)
    blocked = block | frozenset(settings.blocklist)
    checks = [
        (not model.text_output, "no text output"),
        (model.is_meta_router, "meta router"),
        (model.is_media_generator and not image_chat(model),
         "media generator (" + "+".join(model.output_modalities) + " output)"),
        (_is_classifier(model.id), "safety classifier, not a chat model"),
        (model.context_length is None and settings.min_context > 0, "unknown context length"),
        (
            model.context_length is not None and model.context_length < settings.min_context,
            f"context {model.context_length} below min_context {settings.min_context}",
        ),
        (model.author in settings.exclude_providers, f"excluded provider {model.author!r}"),
        (model.id in settings.exclude_ids, "excluded id"),
        (model.id.startswith("~"), "alias id (~...), resolves to another model"),
        (model.id in blocked, "blocklisted"),
        (bool(allowed) and model.id not in allowed, "not in allowlist"),
        (model.expiration is not None and model.expiration <= now, "expired"),
        (not model.price_known, "unknown price"),
    ]
    reasons = [reason for failed, reason in checks if failed]
    suffix = next((s for s in settings.exclude_suffixes if model.id.endswith(s)), None)
    if suffix is not None:
        reasons.append(f"excluded suffix {suffix!r}")
    return reasons


def image_chat(model: CatalogueModel) -> bool:
    """A chat model that also answers with images (text+image output, nothing else): the
    `images` alias serves them; every other media generator stays out of the pool."""
    return model.text_output and model.image_output and set(model.output_modalities) <= {"text", "image"}


def _is_classifier(model_id: str) -> bool:
    slug = model_id.partition("/")[2].lower()
    return "content-safety" in slug or bool(CLASSIFIER_TOKENS & set(slug_tokens(model_id)))


def slug_tokens(model_id: str) -> list[str]:
    """The words of the part after the author, without the `:variant` suffix."""
    slug = model_id.partition("/")[2].partition(":")[0].lower()
    return [token for token in re.split(r"[-_./]", slug) if token]


def load_id_list(path: Path | str) -> frozenset[str]:
    """Model ids from a file: one per line, blank lines and `#` comments ignored."""
    text = Path(path).read_text(encoding="utf-8")
    return frozenset(_ids_from_lines(text.splitlines()))


def _ids_from_lines(lines: Iterable[str]) -> Iterable[str]:
    for line in lines:
        value = line.split("#", 1)[0].strip()
        if value:
            yield value


# --- fetching ------------------------------------------------------------------------


async def fetch_catalogue(
    client: httpx.AsyncClient,
    *,
    base_url: str,
    api_key: str | None,
    timeout_s: float,
) -> dict[str, Any]:
    """`GET {base_url}/models` as a dict; `CatalogueError` on any failure (key never shown)."""
    return decode_catalogue(await fetch_catalogue_raw(client, base_url=base_url, api_key=api_key,
                                                      timeout_s=timeout_s))


def decode_catalogue(raw: bytes) -> dict[str, Any]:
    """The catalogue's JSON (orjson: a megabyte in ~3 ms instead of ~10); `CatalogueError` if it is not one."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise CatalogueError("GET /models: response is not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise CatalogueError("GET /models: JSON has no 'data' list")
    return payload


async def fetch_catalogue_raw(
    client: httpx.AsyncClient,
    *,
    base_url: str,
    api_key: str | None,
    timeout_s: float,
) -> bytes:
    """`GET {base_url}/models`, the body undecoded; `CatalogueError` on any failure (key never shown)."""
    url = f"{base_url.rstrip('/')}/models"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with asyncio.timeout(timeout_s):  # total, not per phase as httpx's
            response = await client.get(url, headers=headers, timeout=timeout_s)
    except (TimeoutError, httpx.TimeoutException):
        raise CatalogueError(f"GET {url}: timed out after {timeout_s}s") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise CatalogueError(f"GET {url}: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise CatalogueError(f"GET {url}: HTTP {response.status_code}")
    return response.content
