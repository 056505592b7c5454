"""Parsing and filtering the real OpenRouter catalogues."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import turnout
from turnout.config import PoolSettings
from turnout.pool.catalogue import Catalogue, CatalogueModel, filter_reasons, load_id_list, parse_catalogue, parse_model

DATA = Path(turnout.__file__).parent / "data" / "openrouter"
NOW_AUG = datetime(2026, 8, 20, tzinfo=UTC).timestamp()
NOW_JAN = datetime(2026, 1, 30, tzinfo=UTC).timestamp()
NONE: frozenset[str] = frozenset()


def raw_snapshot(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


def raw_entry(snapshot: dict[str, Any], model_id: str) -> dict[str, Any]:
    return copy.deepcopy(next(m for m in snapshot["data"] if m["id"] == model_id))


@pytest.fixture(scope="module")
def aug_raw() -> dict[str, Any]:
    return raw_snapshot("models-2026-08-19.json")


@pytest.fixture(scope="module")
def aug(aug_raw: dict[str, Any]) -> Catalogue:
    return parse_catalogue(aug_raw, now=NOW_AUG)


@pytest.fixture(scope="module")
def jan() -> Catalogue:
    return parse_catalogue(raw_snapshot("models-2026-01-29.json"), now=NOW_JAN)


def reasons(model: CatalogueModel, *, now: float = NOW_AUG, allow: frozenset[str] = NONE,
            block: frozenset[str] = NONE, **settings: Any) -> list[str]:
    return filter_reasons(model, settings=PoolSettings(**settings), now=now, allow=allow, block=block)


# --- parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "total", "free_ids", "with_tools"),
    [
        ("models-2026-08-19.json", 414, 17, 347),
        ("models-2026-01-29.json", 347, 33, 229),
    ],
)
def test_snapshots_parse_without_loss(name: str, total: int, free_ids: int, with_tools: int) -> None:
    catalogue = parse_catalogue(raw_snapshot(name), now=NOW_AUG)
    assert len(catalogue.models) == total
    assert catalogue.skipped == ()
    assert sum(m.id.endswith(":free") for m in catalogue.models.values()) == free_ids
    assert sum(m.tools for m in catalogue.models.values()) == with_tools
    assert catalogue.fetched_at == NOW_AUG


def test_text_only_output_count_matches_the_readme(aug: Catalogue) -> None:
    assert sum(m.output_modalities == ("text",) for m in aug.models.values()) == 399


@pytest.mark.parametrize(
    ("model_id", "tier", "meta", "media", "tools", "prompt"),
    [
        ("openrouter/auto", "paid", True, True, True, None),  # "-1" prices, text+image out
        ("openrouter/fusion", "paid", True, False, False, None),
        ("openrouter/free", "free", True, False, True, 0.0),  # priced 0 yet a router
        ("~openai/gpt-latest", "paid", True, False, True, 0.0000025),  # tokenizer Router
        ("google/lyria-3-pro-preview", "free", False, True, False, 0.0),  # priced 0, audio out
        ("google/gemini-3.1-flash-image", "paid", False, True, False, 0.0000005),
        ("z-ai/glm-5.2:free", "free", False, False, True, 0.0),
        ("moonshotai/kimi-k3", "paid", False, False, True, 0.000003),
        ("~moonshotai/kimi-latest", "paid", True, False, True, 0.0000026),
    ],
)
def test_real_entries_are_classified(
    aug: Catalogue, model_id: str, tier: str, meta: bool, media: bool, tools: bool, prompt: float | None
) -> None:
    model = aug.models[model_id]
    assert (model.tier, model.is_meta_router, model.is_media_generator, model.tools, model.prompt_price) == (
        tier, meta, media, tools, prompt,
    )


def test_a_rich_entry_keeps_every_field(aug: Catalogue) -> None:
    model = aug.models["z-ai/glm-5.2:free"]
    assert model.author == "z-ai"
    assert model.context_length == 256000
    assert model.max_completion_tokens == 256000
    assert model.benchmarks.intelligence == 52.6
    assert model.benchmarks.coding == 68.8
    assert model.text_output and not model.vision and not model.image_output
    assert model.created == 1781631930.0


def test_vision_json_and_reasoning_come_from_modalities_and_parameters(aug: Catalogue) -> None:
    model = aug.models["qwen/qwen3.8-27b"]
    assert (model.vision, model.json_mode, model.reasoning, model.tools) == (True, True, True, True)
    assert "video" in model.input_modalities


def test_expiration_date_becomes_the_start_of_that_day(aug: Catalogue) -> None:
    expected = datetime(2026, 8, 24, tzinfo=UTC).timestamp()
    assert aug.models["nvidia/nemotron-nano-12b-v2-vl:free"].expiration == expected
    assert aug.models["z-ai/glm-5.2:free"].expiration is None


def test_null_context_length_falls_back_to_top_provider(aug_raw: dict[str, Any]) -> None:
    entry = raw_entry(aug_raw, "moonshotai/kimi-k3")
    entry["context_length"] = None
    model = parse_model(entry)
    assert model.context_length == entry["top_provider"]["context_length"] == 1048576


def test_null_context_everywhere_stays_unknown(aug_raw: dict[str, Any]) -> None:
    entry = raw_entry(aug_raw, "openrouter/auto")  # real: top_provider.context_length is null
    entry["context_length"] = None
    assert parse_model(entry).context_length is None


@pytest.mark.parametrize(
    ("pricing", "prompt", "completion", "tier"),
    [
        ({"prompt": "0.000001", "completion": "0.000002"}, 0.000001, 0.000002, "paid"),
        ({"prompt": 0.000001, "completion": 2e-6}, 0.000001, 0.000002, "paid"),
        ({"prompt": "0", "completion": "0"}, 0.0, 0.0, "free"),
        ({"prompt": 0, "completion": 0}, 0.0, 0.0, "free"),
        ({"prompt": "-1", "completion": "-1"}, None, None, "paid"),
        ({"prompt": "0", "completion": "-1"}, 0.0, None, "paid"),
        ({"prompt": "abc", "completion": None}, None, None, "paid"),
        ({}, None, None, "paid"),
        ("not a mapping", None, None, "paid"),
    ],
)
def test_prices_parse_from_any_real_shape(
    aug_raw: dict[str, Any], pricing: Any, prompt: float | None, completion: float | None, tier: str
) -> None:
    entry = raw_entry(aug_raw, "moonshotai/kimi-k3")
    entry["pricing"] = pricing
    model = parse_model(entry)
    assert (model.prompt_price, model.completion_price, model.tier) == (prompt, completion, tier)


def test_tiered_price_overrides_do_not_disturb_the_base_price(aug: Catalogue) -> None:
    model = aug.models["x-ai/grok-4.6"]  # pricing.overrides is a list of tiers
    assert (model.prompt_price, model.completion_price) == (0.000002, 0.000006)


def test_missing_sections_default_to_text_chat(aug_raw: dict[str, Any]) -> None:
    entry = raw_entry(aug_raw, "z-ai/glm-5.2:free")
    for key in ("architecture", "supported_parameters", "top_provider", "benchmarks", "reasoning", "created"):
        entry.pop(key, None)
    entry["surprise_field"] = {"nested": [1, 2]}
    model = parse_model(entry)
    assert model.input_modalities == ("text",) and model.output_modalities == ("text",)
    assert (model.tools, model.reasoning, model.created, model.max_completion_tokens) == (False, False, None, None)
    assert model.benchmarks.intelligence is None


def test_modality_string_is_used_when_lists_are_missing(aug_raw: dict[str, Any]) -> None:
    entry = raw_entry(aug_raw, "qwen/qwen3.8-27b")
    entry["architecture"] = {"modality": "text+image->text"}
    model = parse_model(entry)
    assert model.vision and model.output_modalities == ("text",)


def test_garbage_entries_are_counted_not_raised(aug_raw: dict[str, Any]) -> None:
    good = raw_entry(aug_raw, "z-ai/glm-5.2:free")
    payload = {"data": [good, "junk", None, {"name": "no id"}, {"id": ""}, {"id": 42}, copy.deepcopy(good)]}
    catalogue = parse_catalogue(payload, now=NOW_AUG)
    assert list(catalogue.models) == ["z-ai/glm-5.2:free"]
    assert [(s.index, s.reason.split(" ")[0]) for s in catalogue.skipped] == [
        (1, "entry"), (2, "entry"), (3, "missing"), (4, "missing"), (5, "missing"), (6, "duplicate"),
    ]


@pytest.mark.parametrize("payload", [{}, {"data": None}, {"data": {"id": "x"}}, {"error": {"code": 500}}])
def test_payload_without_a_data_list_gives_an_empty_catalogue(payload: dict[str, Any]) -> None:
    catalogue = parse_catalogue(payload, now=NOW_AUG)
    assert catalogue.models == {} and len(catalogue.skipped) == 1


# --- filters ---------------------------------------------------------------------------


def test_default_filters_keep_a_free_tool_model(aug: Catalogue) -> None:
    assert reasons(aug.models["z-ai/glm-5.2:free"]) == []
    assert reasons(aug.models["moonshotai/kimi-k3"]) == []


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("openrouter/auto", "meta router"),
        ("openrouter/free", "meta router"),
        ("openrouter/fusion", "unknown price"),
        ("~openai/gpt-latest", "alias id (~...), resolves to another model"),
        ("google/lyria-3-pro-preview", "media generator (text+audio output)"),
        ("nvidia/nemotron-3.5-content-safety:free", "safety classifier, not a chat model"),
        ("meta-llama/llama-guard-4-12b", "safety classifier, not a chat model"),
        ("openai/gpt-5-mini:batch", "excluded suffix ':batch'"),
        ("qwen/qwen-plus-2025-07-28:thinking", "excluded suffix ':thinking'"),
        ("openai/gpt-4", "context 8191 below min_context 8192"),
    ],
)
def test_default_filters_reject_real_entries(aug: Catalogue, model_id: str, expected: str) -> None:
    assert expected in reasons(aug.models[model_id])


def test_extended_suffix_is_excluded_in_the_january_snapshot(jan: Catalogue) -> None:
    assert reasons(jan.models["openai/gpt-4o:extended"], now=NOW_JAN) == ["excluded suffix ':extended'"]
    assert reasons(jan.models["z-ai/glm-4.6:exacto"], now=NOW_JAN) == []


@pytest.mark.parametrize(
    ("model_id", "settings", "allow", "block", "expected"),
    [
        ("z-ai/glm-5.2:free", {"exclude_providers": ["z-ai"]}, NONE, NONE, ["excluded provider 'z-ai'"]),
        ("z-ai/glm-5.2:free", {"exclude_ids": ["z-ai/glm-5.2:free"]}, NONE, NONE, ["excluded id"]),
        ("z-ai/glm-5.2:free", {"exclude_suffixes": [":free"]}, NONE, NONE, ["excluded suffix ':free'"]),
        ("z-ai/glm-5.2:free", {"min_context": 300_000}, NONE, NONE, ["context 256000 below min_context 300000"]),
        ("z-ai/glm-5.2:free", {}, NONE, frozenset({"z-ai/glm-5.2:free"}), ["blocklisted"]),
        ("z-ai/glm-5.2:free", {"blocklist": ["z-ai/glm-5.2:free"]}, NONE, NONE, ["blocklisted"]),
        ("z-ai/glm-5.2:free", {}, frozenset({"moonshotai/kimi-k3"}), NONE, ["not in allowlist"]),
        ("z-ai/glm-5.2:free", {"allowlist": ["moonshotai/kimi-k3"]}, NONE, NONE, ["not in allowlist"]),
        ("z-ai/glm-5.2:free", {"allowlist": ["z-ai/glm-5.2:free"]}, NONE, NONE, []),
        ("openai/gpt-4", {"min_context": 0}, NONE, NONE, []),
    ],
)
def test_configured_filters(
    aug: Catalogue, model_id: str, settings: dict[str, Any], allow: frozenset[str], block: frozenset[str],
    expected: list[str],
) -> None:
    assert reasons(aug.models[model_id], allow=allow, block=block, **settings) == expected


@pytest.mark.parametrize(
    ("now", "expired"),
    [
        (datetime(2026, 8, 23, 23, 59, tzinfo=UTC).timestamp(), False),
        (datetime(2026, 8, 24, tzinfo=UTC).timestamp(), True),
        (datetime(2026, 9, 1, tzinfo=UTC).timestamp(), True),
    ],
)
def test_expired_models_are_filtered(aug: Catalogue, now: float, expired: bool) -> None:
    model = aug.models["nvidia/nemotron-nano-12b-v2-vl:free"]  # expiration_date 2026-08-24
    assert ("expired" in reasons(model, now=now)) is expired


def test_a_real_chat_model_priced_minus_one_is_unknown_price(aug_raw: dict[str, Any]) -> None:
    entry = raw_entry(aug_raw, "moonshotai/kimi-k3")
    entry["pricing"]["prompt"] = "-1"
    assert reasons(parse_model(entry)) == ["unknown price"]


def test_a_model_without_text_output_is_rejected(aug_raw: dict[str, Any]) -> None:
    entry = raw_entry(aug_raw, "google/lyria-3-clip-preview")
    entry["architecture"]["output_modalities"] = ["audio"]
    found = reasons(parse_model(entry))
    assert found[:2] == ["no text output", "media generator (audio output)"]


def test_unknown_context_is_rejected_only_with_a_minimum(aug_raw: dict[str, Any]) -> None:
    entry = raw_entry(aug_raw, "moonshotai/kimi-k3")
    entry["context_length"] = None
    entry["top_provider"]["context_length"] = None
    model = parse_model(entry)
    assert reasons(model) == ["unknown context length"]
    assert reasons(model, min_context=0) == []


def test_id_lists_skip_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "block.txt"
    path.write_text("# blocked models\nz-ai/glm-5.2:free\n\n  moonshotai/kimi-k3  # too slow today\n#x/y\n")
    assert load_id_list(path) == {"z-ai/glm-5.2:free", "moonshotai/kimi-k3"}
