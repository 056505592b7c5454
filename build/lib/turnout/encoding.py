"""JSON out, fast: orjson where it can encode a value, the standard library where it cannot.

orjson is 5-10x faster than `json.dumps`; every hot-path body and log line goes through
`dumps`. It refuses two things the standard library takes from a client's JSON, integers
beyond 64 bits and lone surrogates: such values take the slow path and leave unchanged.
NaN and infinities become null (`json.dumps` would write them as invalid JSON).
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value).encode()
