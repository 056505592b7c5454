"""Joining a continuation's text onto what the client already has: pure text, no I/O.

A stream that broke after `delivered` reached the client is continued by another
deployment in one of two ways:

    prefill   the request's messages plus an assistant message holding `delivered` (its
              trailing whitespace stripped: Anthropic refuses a prefill that ends in
              whitespace, and the model writes it back). The answer is the rest; some
              providers repeat the prefill first (Mistral), and the whitespace the prefill
              lost may come again: both are dropped here.
    restart   the same request again, for deployments that refuse prefill. The new answer
              must begin with `delivered`; that prefix is dropped and the rest goes on.
              When it begins otherwise, the splice has `diverged`: the caller ends the
              stream with an error instead of stitching two different answers.

`Seam.feed` takes each piece of new text and returns what the client should get of it
(possibly nothing yet: text is held while it could still be an echo or the prefix).
"""

from __future__ import annotations

from typing import Literal

Mode = Literal["prefill", "restart"]


class Diverged(Exception):
    """The restarted answer does not begin with what the client already has."""


def prefill_text(delivered: str) -> str:
    """The assistant prefill sent for `delivered`."""
    return delivered.rstrip()


def trailing_whitespace(text: str) -> str:
    return text[len(text.rstrip()):] if text.strip() else ""


class Seam:
    def __init__(self, *, delivered: str, mode: Mode) -> None:
        self.mode: Mode = mode
        self._delivered = delivered
        self._prefill = prefill_text(delivered) if mode == "prefill" else ""
        self._held = ""
        self._settled = (not self._prefill and mode == "prefill") or not delivered
        # What the prefill lost: trailing whitespace the model may send again.
        self._seam = trailing_whitespace(delivered) if mode == "prefill" else ""

    @property
    def settled(self) -> bool:
        """Past the echo or the prefix: from here on text passes as it comes (but for the seam)."""
        return self._settled

    def feed(self, text: str) -> str:
        if self._settled:
            return self._past_seam(text)
        self._held += text
        if self.mode == "restart":
            return self._restart()
        return self._echo()

    def finish(self) -> str:
        """The continuation ended: release what is still held (restart: it never caught up)."""
        if self._settled:
            return ""
        if self.mode == "restart":
            raise Diverged(f"the restarted answer ended after {len(self._held)} of the {len(self._delivered)} "
                           "characters the client already has")
        held, self._held, self._settled = self._held, "", True
        return self._past_seam(held)

    def _restart(self) -> str:
        held, delivered = self._held, self._delivered
        if len(held) < len(delivered):
            if not delivered.startswith(held):
                raise Diverged(_divergence(held, delivered))
            return ""
        if not held.startswith(delivered):
            raise Diverged(_divergence(held, delivered))
        self._held, self._settled = "", True
        return held[len(delivered):]

    def _echo(self) -> str:
        held, prefill = self._held, self._prefill
        if len(held) < len(prefill) and prefill.startswith(held):
            return ""  # may still be the prefill coming back
        self._held, self._settled = "", True
        if held.startswith(prefill):
            held = held[len(prefill):]
        return self._past_seam(held)

    def _past_seam(self, text: str) -> str:
        if not self._seam or not text:
            return text
        matched = _common(text, self._seam)
        self._seam = self._seam[matched:] if matched == len(text) else ""
        return text[matched:]


def _divergence(new: str, delivered: str) -> str:
    at = _common(new, delivered)
    return f"the restarted answer differs from what the client already has at character {at}"


def _common(a: str, b: str) -> int:
    """Length of the longest common prefix of `a` and `b`."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n
