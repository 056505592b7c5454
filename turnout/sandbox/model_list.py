"""The sandbox's model catalogue: an immutable snapshot of `GET /models`.

Adding or removing a model builds a new `ModelList`; the server publishes it
with one assignment, so a request sees the old list or the new one, never a mix.
Entries are served verbatim; `ModelInfo` holds what the chat path needs, parsed
once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CATALOGUE = (
    Path(__file__).resolve().parent.parent / "data" / "openrouter" / "models-2026-08-19.json"
)


class ModelListError(ValueError):
    """The snapshot or an added entry is not shaped like OpenRouter's."""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    entry: Mapping[str, Any]
    prompt_price: float
    completion_price: float
    is_free: bool
    supports_tools: bool
    accepts_images: bool
    context_length: int | None
    outputs_images: bool = False

    @property
    def canonical_slug(self) -> str:
        slug = self.entry.get("canonical_slug")
        return slug if isinstance(slug, str) and slug else self.id

    def cost(self, *, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self.prompt_price + completion_tokens * self.completion_price


def model_info(entry: Mapping[str, Any]) -> ModelInfo:
    model_id = entry.get("id")
    if not isinstance(model_id, str) or not model_id:
        raise ModelListError("a model entry needs a non-empty string 'id'")
    pricing = _mapping(entry.get("pricing"))
    prompt = _price(pricing.get("prompt"))
    completion = _price(pricing.get("completion"))
    architecture = _mapping(entry.get("architecture"))
    params = entry.get("supported_parameters") or []
    inputs = architecture.get("input_modalities") or ["text"]
    context = entry.get("context_length")
    return ModelInfo(
        id=model_id,
        entry=entry,
        # Meta-routers price at "-1"; never charge a negative amount.
        prompt_price=max(prompt or 0.0, 0.0),
        completion_price=max(completion or 0.0, 0.0),
        is_free=model_id.endswith(":free") or (prompt == 0.0 and completion == 0.0),
        supports_tools="tools" in params,
        accepts_images="image" in inputs,
        context_length=context if isinstance(context, int) and context > 0 else None,
        outputs_images="image" in (architecture.get("output_modalities") or []),
    )


@dataclass(frozen=True)
class ModelList:
    """One published version of the model list."""

    entries: tuple[Mapping[str, Any], ...]
    extras: Mapping[str, Any] = field(default_factory=dict)
    by_id: dict[str, ModelInfo] = field(init=False, repr=False, compare=False)
    by_slug: dict[str, ModelInfo] = field(init=False, repr=False, compare=False)
    _body: bytes | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        infos = [model_info(entry) for entry in self.entries]
        by_id = {info.id: info for info in infos}
        by_slug = dict(by_id)
        # `links.details` uses the canonical slug.  Variants (`x:free`,
        # `x:batch`) share it with `x` and are reached by their own id only.
        for info in infos:
            if ":" not in info.id:
                by_slug.setdefault(info.canonical_slug, info)
        object.__setattr__(self, "by_id", by_id)
        object.__setattr__(self, "by_slug", by_slug)

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, model_id: str) -> ModelInfo | None:
        return self.by_id.get(model_id)

    def lookup_slug(self, slug: str) -> ModelInfo | None:
        """Find a model by id or canonical slug, as `/endpoints` does."""
        return self.by_slug.get(slug)

    def models_body(self) -> bytes:
        """The `GET /models` body, serialised once per catalogue version."""
        if self._body is not None:
            return self._body
        body: dict[str, Any] = {"data": list(self.entries)}
        for key, value in self.extras.items():
            body[key] = len(self.entries) if key == "total_count" else value
        encoded = json.dumps(body).encode()
        object.__setattr__(self, "_body", encoded)
        return encoded

    def with_model(self, entry: Mapping[str, Any]) -> ModelList:
        """A new catalogue with `entry` added in front (or replacing its id)."""
        info = model_info(entry)
        if info.id in self.by_id:
            entries = tuple(entry if e.get("id") == info.id else e for e in self.entries)
        else:
            entries = (entry, *self.entries)
        return ModelList(entries, self.extras)

    def without_model(self, model_id: str) -> ModelList:
        if model_id not in self.by_id:
            raise KeyError(model_id)
        entries = tuple(e for e in self.entries if e.get("id") != model_id)
        return ModelList(entries, self.extras)


def load_model_list(path: Path | None = None) -> ModelList:
    """Read a saved `GET /api/v1/models` response."""
    source = path or DEFAULT_CATALOGUE
    try:
        raw = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelListError(f"cannot read catalogue {source}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
        raise ModelListError(f"catalogue {source} has no 'data' list")
    extras = {key: value for key, value in raw.items() if key != "data"}
    return ModelList(tuple(raw["data"]), extras)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _price(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None
