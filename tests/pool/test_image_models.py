"""Image-output models: in the pool for the `images` alias only; other media generators stay out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import turnout
from turnout.config import Settings
from turnout.pool.catalogue import filter_reasons, parse_catalogue, parse_model
from turnout.pool.selection import build_pool, health_targets

DATA = Path(turnout.__file__).parent / "data" / "openrouter"
NOW = datetime(2026, 8, 20, tzinfo=UTC).timestamp()
CATALOGUE = parse_catalogue(json.loads((DATA / "models-2026-08-19.json").read_text()), now=NOW)
SETTINGS = Settings(openrouter_base_url="https://openrouter.ai/api/v1", pool={"health": {"enabled": False}})
IMAGE_CHAT = {m.id for m in CATALOGUE.models.values()
              if m.image_output and m.text_output and not m.is_meta_router}


def test_image_chat_models_pass_the_filter_other_media_generators_do_not() -> None:
    assert len(IMAGE_CHAT) >= 8
    for model_id in IMAGE_CHAT:
        reasons = filter_reasons(CATALOGUE.models[model_id], settings=SETTINGS.pool, now=NOW, allow=frozenset(),
                                 block=frozenset())
        assert not [r for r in reasons if r.startswith("media generator")], model_id
    audio = parse_model({"id": "x/speech", "architecture": {"input_modalities": ["text"],
                                                             "output_modalities": ["text", "audio"]},
                         "pricing": {"prompt": "0.000001", "completion": "0.000001"}, "context_length": 32768})
    image_only = parse_model({"id": "x/painter", "architecture": {"output_modalities": ["image"]},
                              "pricing": {"prompt": "0.000001", "completion": "0.000001"}, "context_length": 32768})
    for model in (audio, image_only):
        reasons = filter_reasons(model, settings=SETTINGS.pool, now=NOW, allow=frozenset(), block=frozenset())
        assert any(r.startswith("media generator") or r == "no text output" for r in reasons), model.id


def test_only_the_images_alias_seats_image_models() -> None:
    pool = build_pool(catalogue=CATALOGUE, health={}, passive={}, settings=SETTINGS, previous=None, now=NOW)
    members = {name: [pool.deployments[m.deployment_id] for m in group.members] for name, group in pool.groups.items()
               if group.kind == "alias"}
    assert members["images"] and all(d.capabilities.image_output for d in members["images"])
    assert {d.model for d in members["images"]} <= IMAGE_CHAT
    for alias, deps in members.items():
        if alias != "images":
            assert not any(d.capabilities.image_output for d in deps), alias


def test_health_reads_for_text_models_are_unchanged_by_image_models() -> None:
    """The per-tier top-N health targets stay text models; image models are read for their alias."""
    on = SETTINGS.model_copy(update={"pool": SETTINGS.pool.model_copy(
        update={"health": SETTINGS.pool.health.model_copy(update={"enabled": True})})})
    without = on.model_copy(update={"aliases": {k: v for k, v in on.aliases.items() if k != "images"}})
    targets = set(health_targets(catalogue=CATALOGUE, settings=on, previous=None, now=NOW))
    text_targets = set(health_targets(catalogue=CATALOGUE, settings=without, previous=None, now=NOW))
    assert text_targets == targets - IMAGE_CHAT and targets & IMAGE_CHAT
