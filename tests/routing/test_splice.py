"""Splicing a continuation onto what the client has: plain tables over `splice.Seam`."""

from __future__ import annotations

import pytest

from turnout.routing.splice import Diverged, Seam, prefill_text, trailing_whitespace


@pytest.mark.parametrize(("delivered", "pieces", "expected"), [
    # a continuation after a whole word: the prefill lost the space, the model sends it back
    ("one two ", [" three", " four."], "three four."),
    # cut inside a word: no seam to drop
    ("one tw", ["o three."], "o three."),
    # a provider that repeats the prefill first (Mistral): the echo is dropped, even split up
    ("one two ", ["one", " two", " three."], "three."),
    ("one two ", ["one two three."], "three."),
    # text that starts like the prefill but is not an echo is released whole
    ("one two ", ["one more"], "one more"),
    # the model does not resend the space: nothing to drop
    ("one two ", ["three."], "three."),
    # nothing delivered: everything passes
    ("", ["all of it"], "all of it"),
    ("one\n\n", ["\n\nnext"], "next"),
    ("one\n\n", ["\nnext"], "next"),
])
def test_prefill_continuations(delivered: str, pieces: list[str], expected: str) -> None:
    seam = Seam(delivered=delivered, mode="prefill")
    out = "".join(seam.feed(piece) for piece in pieces) + seam.finish()
    assert out == expected


@pytest.mark.parametrize(("delivered", "pieces", "expected"), [
    ("one two ", ["one ", "two ", "three."], "three."),
    ("one two ", ["one two three."], "three."),
    ("one tw", ["one ", "two ", "three."], "o three."),
    ("one two ", ["one two "], ""),  # the restart ends exactly where the client is
    ("", ["one."], "one."),
])
def test_restarts_that_match(delivered: str, pieces: list[str], expected: str) -> None:
    seam = Seam(delivered=delivered, mode="restart")
    out = "".join(seam.feed(piece) for piece in pieces) + seam.finish()
    assert out == expected


@pytest.mark.parametrize(("delivered", "pieces"), [
    ("one two ", ["one ", "too"]),  # differs while still inside what the client has
    ("one two ", ["one two", "-three"]),  # differs right at the end of it
    ("one two ", ["uno "]),
])
def test_restarts_that_diverge(delivered: str, pieces: list[str]) -> None:
    seam = Seam(delivered=delivered, mode="restart")
    with pytest.raises(Diverged):
        for piece in pieces:
            seam.feed(piece)


def test_a_restart_shorter_than_what_the_client_has_diverges_at_its_end() -> None:
    seam = Seam(delivered="one two three ", mode="restart")
    assert seam.feed("one two") == ""
    with pytest.raises(Diverged, match="ended after 7 of the 14"):
        seam.finish()


def test_text_is_held_only_while_it_could_be_an_echo() -> None:
    seam = Seam(delivered="alpha beta ", mode="prefill")
    assert seam.feed("alpha") == ""  # could be the prefill coming back
    assert not seam.settled
    assert seam.feed(" gamma") == "alpha gamma"  # it was not
    assert seam.settled
    assert seam.feed(" delta") == " delta"


@pytest.mark.parametrize(("text", "prefill", "tail"), [
    ("one two ", "one two", " "),
    ("one two", "one two", ""),
    ("one\n\n", "one", "\n\n"),
    ("   ", "", ""),
    ("", "", ""),
])
def test_prefill_text_and_its_lost_whitespace(text: str, prefill: str, tail: str) -> None:
    assert prefill_text(text) == prefill
    assert trailing_whitespace(text) == tail
