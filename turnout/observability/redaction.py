"""Every configured secret, masked in any text that leaves the gateway.

The secrets are the OpenRouter key, each static deployment's key (the variable its
`api_key_env` names), the gateway keys and the admin key. An upstream may echo the
credential it was sent in its error body; a library may put it in an exception. So the
masking is not left to whoever builds a message: it runs where text leaves — error bodies
and stream error frames (`turnout.api.asgi`, `turnout.api.chat`), every FastAPI response
(the status page, `/metrics`, `/readyz`, `/admin/*`, `/v1/models`: `turnout.api.gateway`),
and every log record (`LogRedaction`, installed by the lifespan). Answers a model streams
are not scanned.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

from turnout.config import Settings

MASK = "***"
# Shorter values would mask ordinary words; keys that short are refused by the config.
MIN_SECRET_CHARS = 8


class Redactor:
    __slots__ = ("_secrets", "_secrets_bytes")

    def __init__(self, secrets: Iterable[str]) -> None:
        found = {s for s in secrets if len(s) >= MIN_SECRET_CHARS}
        self._secrets = tuple(sorted(found, key=len, reverse=True))  # a key inside a longer one: longest first
        self._secrets_bytes = tuple(s.encode("utf-8", "surrogatepass") for s in self._secrets)

    @classmethod
    def for_settings(cls, settings: Settings) -> Redactor:
        return cls(configured_secrets(settings))

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def data(self, value: bytes) -> bytes:
        for secret in self._secrets_bytes:
            if secret in value:
                value = value.replace(secret, MASK.encode())
        return value


def configured_secrets(settings: Settings) -> list[str]:
    found = [key.get_secret_value() for key in settings.api_keys]
    for key in (settings.admin_key, settings.openrouter_api_key):
        if key is not None:
            found.append(key.get_secret_value())
    for deployment in settings.deployments:
        value = os.environ.get(deployment.api_key_env) if deployment.api_key_env else None
        if value:
            found.append(value)
    return found


class LogRedaction(logging.Filter):
    """Masks secrets in a record's message and traceback before any handler formats it."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self._redactor.text(message)
        if masked is not message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redactor.text(record.exc_text)
        return True
