"""The sandbox's fault plan: what goes wrong, for which models, how often.

Every model has `extra="forbid"`, so a typo in a plan fails loudly instead of
silently doing nothing.  Rates are probabilities in [0, 1]; the random faults
of one call are mutually exclusive bands of a single uniform draw, taken in the
order hang, reset, rate limit, error, error_200.

Stream faults count `data:` chunks, and the first chunk of every answer is the
role chunk (`{"role": "assistant", "content": ""}`), so "cut after 40 tokens"
is `stream_cut_after=41`.  `scenarios.scorecard_plan` builds the failover
scorecard's rows from these.
"""

from __future__ import annotations

import random
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Rate = Annotated[float, Field(ge=0.0, le=1.0)]
Milliseconds = Annotated[float, Field(ge=0.0)]


class ModelFaults(BaseModel):
    """Faults for one model (or for a class of models)."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: Milliseconds = 0.0
    first_token_delay_ms: Milliseconds = 0.0
    chunk_delay_ms: Milliseconds = 0.0
    error_rate: Rate = 0.0
    error_codes: list[int] = Field(default_factory=lambda: [500], min_length=1)
    rate_limit_rate: Rate = 0.0
    retry_after_s: float | None = Field(default=None, ge=0.0)
    reset_rate: Rate = 0.0
    hang_rate: Rate = 0.0
    error_200_rate: Rate = 0.0
    stream_cut_after: int | None = Field(default=None, ge=0)
    stream_stall_after: int | None = Field(default=None, ge=0)
    stream_error_after: int | None = Field(default=None, ge=0)
    malformed_after: int | None = Field(default=None, ge=0)
    # One invalid-JSON event before chunk N, then the stream goes on normally to [DONE].
    malformed_event_at: int | None = Field(default=None, ge=0)
    no_done: bool = False
    context_length: int | None = Field(default=None, ge=1)
    content_filter: bool = False
    fail_next: int = Field(default=0, ge=0)
    fail_next_code: int = 500
    # Every call fails with `fail_next_code` for this long after the plan was set (an outage window).
    fail_for_s: float = Field(default=0.0, ge=0.0)
    # A JSON answer whose body stops halfway (Content-Length promises more).
    truncate_json: bool = False
    # A 400 content-policy refusal (as providers' safety filters send it), not a 200 with
    # finish_reason content_filter (that is `content_filter`).
    content_policy_error: bool = False
    # How the model takes a request whose last message is the assistant's (prefill):
    # "continue" answers only the rest of its answer, as Anthropic, DeepSeek or Mistral do;
    # "refuse" answers 400 the way models without prefill support do.
    prefill: Literal["continue", "refuse"] = "continue"
    reasoning_only: bool = False
    # /endpoints knobs.  For `uptime`, `latency_p50_ms` and `throughput_p50`
    # an explicit null is different from "not given": not given means "derive
    # from the faults above", null means "emit null" (see `explicit`).
    endpoint_status: int | None = 0
    uptime: float | None = Field(default=None, ge=0.0, le=100.0)
    latency_p50_ms: float | None = Field(default=None, ge=0.0)
    throughput_p50: float | None = Field(default=None, ge=0.0)
    endpoints_error: int | None = None

    def explicit(self, field: str) -> bool:
        """True when the plan set `field` (even to null)."""
        return field in self.model_fields_set

    @property
    def failure_rate(self) -> float:
        """Share of calls that fail at random; drives the default uptime."""
        rates = (
            self.error_rate,
            self.rate_limit_rate,
            self.reset_rate,
            self.hang_rate,
            self.error_200_rate,
        )
        return min(1.0, sum(rates))


class FreeTier(BaseModel):
    """OpenRouter's account-wide limits on free models."""

    model_config = ConfigDict(extra="forbid")

    enforce: bool = False
    per_minute: int = Field(default=20, ge=0)
    per_day: int = Field(default=50, ge=0)
    is_free_tier: bool = True
    day_reset_at_ms: int | None = None


class FaultPlan(BaseModel):
    """The whole plan; `SandboxServer.set_plan` swaps it atomically."""

    model_config = ConfigDict(extra="forbid")

    default: ModelFaults = Field(default_factory=ModelFaults)
    models: dict[str, ModelFaults] = Field(default_factory=dict)
    free_models: ModelFaults | None = None
    free_tier: FreeTier = Field(default_factory=FreeTier)
    catalogue_error: int | None = None
    catalogue_hang: bool = False
    seed: int | None = None
    # None: a model echoes the prompt and names itself ("Hello from <model>. You said: ...").
    # N: every model gives the same answer to the same conversation, N words picked by a
    # hash of its messages (see `chat.scripted_answer`), so a stream that one model started
    # and another finished can be checked against the whole answer.
    answer_words: int | None = Field(default=None, ge=1, le=10_000)

    def faults_for(self, model_id: str, *, is_free: bool) -> ModelFaults:
        listed = self.models.get(model_id)
        if listed is not None:
            return listed
        if is_free and self.free_models is not None:
            return self.free_models
        return self.default

    @classmethod
    def realistic(cls, seed: int = 0) -> FaultPlan:
        """A mixed plan like a normal day on OpenRouter, with small latencies.

        Free models: ~10 % provider 429s, ~3 % 5xx, ~1 % resets, ~1 % hangs,
        ~0.5 % errors inside HTTP 200.  A few well-known free ids are noisier
        and send `Retry-After`.  Paid models: ~1 % 5xx.
        """
        rng = random.Random(seed)
        free = ModelFaults(
            latency_ms=rng.uniform(10, 30),
            chunk_delay_ms=1,
            rate_limit_rate=0.10,
            error_rate=0.03,
            error_codes=[500, 502, 503],
            reset_rate=0.01,
            hang_rate=0.01,
            error_200_rate=0.005,
        )
        noisy = free.model_copy(update={"rate_limit_rate": 0.2, "retry_after_s": 1})
        paid = ModelFaults(
            latency_ms=rng.uniform(5, 15),
            error_rate=0.01,
            error_codes=[500, 502, 503],
        )
        return cls(
            default=paid,
            free_models=free,
            models={model_id: noisy for model_id in _NOISY_FREE_MODELS},
            seed=seed,
        )


# Free ids present in both bundled snapshots.
_NOISY_FREE_MODELS = (
    "openai/gpt-oss-20b:free",
    "nvidia/nemotron-nano-9b-v2:free",
)
