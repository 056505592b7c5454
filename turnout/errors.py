"""Turnout's exceptions. Raised anywhere inside; turned into HTTP only at the edge (turnout.api.error_shapes).

    GatewayError                      status, type, code, param, message
    ├── InvalidRequest        400     bad JSON, wrong types, forbidden routing fields
    ├── Unauthorized          401     no or wrong gateway key
    ├── Forbidden             403     admin route without the admin key; a model the key may not use
    ├── ModelNotFound         404     unknown model name (suggests close names)
    ├── KeyLimited            429     a named key over its rpm or daily budget (Retry-After: the window's reset)
    ├── MethodNotAllowed      405     anything but POST on the chat path
    ├── PayloadTooLarge       413     body over max_body_bytes
    ├── UnsupportedMediaType  415     body is not JSON
    ├── ClientClosedRequest   499     the client went away (nobody reads the answer)
    ├── NotReady              503     no routable pool yet
    └── UpstreamFailed        4xx/5xx the upstream side failed the request
        └── AllAttemptsFailed         every attempt in the chain failed: carries each of them
                                      (`attempts`), its status and Retry-After

Kinds of upstream failure and what each means live in one table, `turnout.upstream.failures`;
the final error's status and code come from there. The edge (`turnout.api.error_shapes`)
turns these into the API's error body and headers; nothing else does.
"""

from __future__ import annotations

from dataclasses import dataclass


class GatewayError(Exception):
    status: int = 500
    type: str = "api_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class Unauthorized(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(GatewayError):
    status = 403
    type = "permission_error"
    code = "forbidden"


class ModelNotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class KeyLimited(GatewayError):
    """A named gateway key is over its requests per minute or its daily budget."""

    status = 429
    type = "rate_limit_error"

    def __init__(self, message: str, *, code: str, retry_after: float) -> None:
        super().__init__(message, code=code, headers={"Retry-After": str(max(1, round(retry_after)))})
        self.retry_after = retry_after


class MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class UnsupportedMediaType(GatewayError):
    status = 415
    type = "invalid_request_error"
    code = "unsupported_media_type"


class ClientClosedRequest(GatewayError):
    status = 499
    type = "client_closed_request"
    code = "client_closed_request"


class NotReady(GatewayError):
    status = 503
    type = "service_unavailable"
    code = "pool_not_ready"


class UpstreamFailed(GatewayError):
    """The upstream side failed the request; status and type follow the cause clients can act on."""

    type = "upstream_error"


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One upstream attempt of one request: where it went and how it ended (`outcome` is `ok`
    or a failure kind of `turnout.upstream.failures`)."""

    deployment_id: str
    model: str
    group: str
    tier: str
    outcome: str
    status: int | None
    latency_s: float
    message: str = ""


class AllAttemptsFailed(UpstreamFailed):
    """Every attempt the request made failed; `attempts` holds each one, in order."""

    def __init__(
        self,
        message: str,
        *,
        attempts: tuple[AttemptRecord, ...],
        status: int,
        code: str,
        retry_after: float | None = None,
        param: str | None = None,
        type_: str | None = None,
    ) -> None:
        headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else None
        super().__init__(message, param=param, code=code, status=status, headers=headers)
        self.attempts = attempts
        self.retry_after = retry_after
        if type_ is not None:
            self.type = type_
