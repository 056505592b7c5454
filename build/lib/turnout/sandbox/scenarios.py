"""The failover scorecard's sixteen rows as sandbox fault plans.

Each row breaks one upstream model (`primary`) in one way while a second model
(`fallback`) answers normally, and every model gives the same scripted answer
(`FaultPlan.answer_words`), so whatever reaches the client can be compared with
the whole answer. Durations are parameters: the scorecard's own (a 2 s
Retry-After, a 20 s first token, a 60 s outage) are the defaults, and tests pass
shorter ones that keep the same relations to the gateway's timeouts.

    S01  429 with Retry-After, then answers      S09  stalls after 20 tokens, socket open
    S02  429 on every call                       S10  one invalid-JSON event at token 10
    S03  one 500, then answers                   S11  finishes (finish_reason, usage), no [DONE]
    S04  503 on every call                       S12  400 context length
    S05  one TCP reset, then answers             S13  400 content policy
    S06  accepts, then says nothing              S14  cut after 40 tokens; fallback refuses prefill
    S07  first token late                        S15  503 for a window, then recovers
    S08  cut after 40 of 60 tokens (no [DONE])   S16  429 with a Retry-After longer than any wait
"""

from __future__ import annotations

from dataclasses import dataclass

from turnout.sandbox.faults import FaultPlan, ModelFaults

ANSWER_WORDS = 60
ROWS = tuple(f"S{n:02d}" for n in range(1, 17))
_ROLE_CHUNK = 1  # every stream opens with the role chunk before its first token


@dataclass(frozen=True, slots=True)
class Timing:
    retry_after_s: float = 2.0
    first_token_s: float = 20.0
    outage_s: float = 60.0
    long_retry_after_s: float = 60.0


def scorecard_plan(row: str, *, primary: str, fallback: str, timing: Timing | None = None,
                   words: int = ANSWER_WORDS) -> FaultPlan:
    """The plan for one row (`S01`..`S16`); unknown rows raise KeyError."""
    t = timing or Timing()
    cut = _ROLE_CHUNK + (words * 2) // 3  # 40 of 60 tokens
    faults = {
        "S01": ModelFaults(fail_next=1, fail_next_code=429, retry_after_s=t.retry_after_s),
        "S02": ModelFaults(rate_limit_rate=1.0),
        "S03": ModelFaults(fail_next=1, fail_next_code=500),
        "S04": ModelFaults(error_rate=1.0, error_codes=[503]),
        "S05": ModelFaults(fail_next=1, fail_next_code=0),
        "S06": ModelFaults(hang_rate=1.0),
        "S07": ModelFaults(first_token_delay_ms=t.first_token_s * 1000),
        "S08": ModelFaults(stream_cut_after=cut),
        "S09": ModelFaults(stream_stall_after=_ROLE_CHUNK + words // 3),
        "S10": ModelFaults(malformed_event_at=_ROLE_CHUNK + 10),
        "S11": ModelFaults(no_done=True),
        "S12": ModelFaults(context_length=1),
        "S13": ModelFaults(content_policy_error=True),
        "S14": ModelFaults(stream_cut_after=cut),
        "S15": ModelFaults(fail_for_s=t.outage_s, fail_next_code=503),
        "S16": ModelFaults(rate_limit_rate=1.0, retry_after_s=t.long_retry_after_s),
    }[row]
    backup = ModelFaults(prefill="refuse") if row == "S14" else ModelFaults()
    return FaultPlan(answer_words=words, models={primary: faults, fallback: backup})
