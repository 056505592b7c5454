"""turnout.encoding: orjson's speed with the standard library's answers."""

from __future__ import annotations

import json
import math

import pytest

from turnout.encoding import dumps, loads

CASES = [b'{"a": 1, "b": [1.5, "x", null, true]}', b'{"big": 18446744073709551615}', b'[NaN]',
         b'{"x": "\\ud800"}', b"[" * 500 + b"]" * 500, b'{"a": 1, "a": 2}', b'"\\u00e9"', b"1e999"]


@pytest.mark.parametrize("raw", CASES, ids=range(len(CASES)))
def test_loads_answers_as_json_loads(raw: bytes) -> None:
    ours, theirs = loads(raw), json.loads(raw)
    if raw == b"[NaN]":
        assert math.isnan(ours[0]) and math.isnan(theirs[0])
    else:
        assert ours == theirs and type(ours) is type(theirs)


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff", b'{"a": 1} x'])
def test_loads_raises_where_json_loads_raises(raw: bytes) -> None:
    with pytest.raises(ValueError):
        json.loads(raw)
    with pytest.raises(ValueError):
        loads(raw)


def test_loads_reads_integers_beyond_64_bits_as_floats() -> None:
    assert loads(b"[123456789012345678901234567890]") == [1.2345678901234568e29]


def test_dumps_round_trips_through_loads() -> None:
    value = {"a": [1, 2.5, "é", None], "big": 2**63}
    assert loads(dumps(value)) == value
