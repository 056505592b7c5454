"""Whether to wait out a short Retry-After and ask the same deployment again.

A 429 that says "retry in 2 s" from the only deployment of the current tier: failing over
at once hands the request to the next tier (paid) or to a fallback group, a worse answer
or a costlier one than two seconds of patience. When the tier still has an untried peer
(the free-first pool has many), the peer answers sooner and the walk moves on at once.
"""

from __future__ import annotations

# Past the announced moment, so the deployment's cooldown has lapsed when it is asked again.
_MARGIN_S = 0.05
# What must be left of the request's deadline after the wait for the retry to be worth it.
_RETRY_ROOM_S = 1.0


def retry_after_wait(
    *, kind: str, retry_after: float | None, cap_s: float, has_peer: bool, remaining_s: float, waited: bool
) -> float | None:
    """Seconds to wait before retrying the same deployment, or None to fail over now.

    `waited`: this deployment was already waited for in this request (once is enough);
    `remaining_s`: what is left of the request's deadline; `cap_s` 0 never waits.
    """
    if kind != "rate_limited" or retry_after is None or waited or has_peer or cap_s <= 0:
        return None
    if retry_after > cap_s:
        return None
    wait = retry_after + _MARGIN_S
    if wait + _RETRY_ROOM_S > remaining_s:
        return None
    return wait
