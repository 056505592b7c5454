"""Usage per named gateway key and tenant, on the app's registry (`/metrics`).

Labels are configured names only (`turnout.routing.tenants`): `key` is a key's `name`
(`default` for `api_keys`, `admin`, `anonymous` without auth), `tenant` its own tenant or
one it lists. Every (key, tenant) series exists from the start at 0.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from turnout.routing.tenants import Caller, KeyRing, Totals

REJECT_REASONS = ("model", "rpm", "budget")


class TenantMetrics:
    def __init__(self, registry: CollectorRegistry, keys: KeyRing) -> None:
        self.requests = Counter("turnout_key_requests_total", "Answered requests by gateway key and tenant.",
                                ("key", "tenant"), registry=registry)
        self.cost = Counter("turnout_key_cost_usd_total", "USD spent by gateway key and tenant.",
                            ("key", "tenant"), registry=registry)
        self.tokens = Counter("turnout_key_tokens_total", "Tokens by gateway key, tenant and kind (prompt, completion).",
                              ("key", "tenant", "kind"), registry=registry)
        self.rejected = Counter("turnout_key_rejected_total",
                                "Requests refused for a key: a model it may not use (403), over its rpm or its "
                                "daily budget (429).", ("key", "reason"), registry=registry)
        for key, tenant in keys.labels():
            self.requests.labels(key, tenant)
            self.cost.labels(key, tenant)
            for kind in ("prompt", "completion"):
                self.tokens.labels(key, tenant, kind)
        for key in sorted({c.key for _, c in keys.client_keys if c.spec is not None}):
            for reason in REJECT_REASONS:
                self.rejected.labels(key, reason)

    def usage(self, caller: Caller, tenant: str, totals: Totals) -> None:
        self.requests.labels(caller.key, tenant).inc(totals.requests)
        if totals.cost_usd > 0:
            self.cost.labels(caller.key, tenant).inc(totals.cost_usd)
        if totals.prompt_tokens:
            self.tokens.labels(caller.key, tenant, "prompt").inc(totals.prompt_tokens)
        if totals.completion_tokens:
            self.tokens.labels(caller.key, tenant, "completion").inc(totals.completion_tokens)

    def reject(self, caller: Caller, reason: str) -> None:
        self.rejected.labels(caller.key, reason).inc()
