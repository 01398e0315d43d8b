"""Counts in words, for every message and page: "1 regression", "2 budget misses", "1 night"."""

from __future__ import annotations


def plural(noun: str) -> str:
    """The English plural of a count noun (the last word takes it: "budget miss" -> "budget misses")."""
    if noun.endswith(("s", "sh", "ch", "x", "z")):
        return noun + "es"
    return noun + "s"


def counted(n: int, noun: str, plural_form: str | None = None) -> str:
    """``n`` and the noun, singular for one: ``counted(1, "night")`` is "1 night", ``counted(0, "night")``
    "0 nights".  ``plural_form`` for words with no regular plural ("undecided" stays "undecided")."""
    return f"{n} {noun if n == 1 else (plural_form or plural(noun))}"
