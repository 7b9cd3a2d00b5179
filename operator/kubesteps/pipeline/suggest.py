"""Did you mean …? The closest known word to a misspelled one.

Used by every message that refuses a name from a known set (fields, actions, step names,
CEL variables and functions, kinds, API versions), so a typo gets the fix in the message.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# difflib's ratio: 2 * matches / total length. 0.6 finds "retires" -> "retry" and
# "Pipline" -> "Pipeline", and does not offer "when" for "with".
CUTOFF = 0.6


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``word``, if any is close enough (case counts half)."""
    options = [choice for choice in dict.fromkeys(choices) if choice != word]
    if not options:
        return None
    exact_but_case = [choice for choice in options if choice.lower() == word.lower()]
    if exact_but_case:
        return exact_but_case[0]
    found = difflib.get_close_matches(word, options, n=1, cutoff=CUTOFF)
    if found:
        return found[0]
    lowered = {choice.lower(): choice for choice in options}
    found = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=CUTOFF)
    return lowered[found[0]] if found else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` — did you mean 'retry'?`` for a close choice, else ``""``: append it to a message."""
    match = closest(word, choices)
    return f" — did you mean {match!r}?" if match is not None else ""
