"""Grounding check: every number in an answer must appear in a tool result.

A number in the answer is grounded when it equals a number of the sources, or that number
rounded to fewer decimals, or that number read as a percentage (0.873 <-> 87.3).
"""

import re
from collections.abc import Iterable
from decimal import Decimal

# A number not glued to a word (so ids like C01234 and versions like v2 are not numbers).
NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?(?![\w])")
LIST_MARKER = re.compile(r"^\s*\d+[.)]\s", re.MULTILINE)


def numbers_in(text: str) -> list[Decimal]:
    """Numbers written in ``text`` (thousands separators dropped, list markers skipped)."""
    text = LIST_MARKER.sub(" ", text)
    return [Decimal(m.group().replace(",", "").lstrip("+")) for m in NUMBER.finditer(text)]


def readings(source: Decimal) -> set[Decimal]:
    """Every way an answer may legitimately write a source number (absolute values)."""
    out: set[Decimal] = set()
    for value in (source, source * 100, source / 100):
        exponent = value.normalize().as_tuple().exponent
        decimals = max(-exponent, 0) if isinstance(exponent, int) else 0
        out.update(abs(round(value, k)).normalize() for k in range(decimals + 1))
    return out


def ungrounded_numbers(answer: str, sources: Iterable[str]) -> list[str]:
    """Numbers of ``answer`` that no source supports.

    Args:
        answer: Text to check.
        sources: Tool result texts (and the question) the answer may cite.

    Returns:
        The unsupported numbers as written, in order of appearance, without repeats.
    """
    allowed: set[Decimal] = set()
    for text in sources:
        for number in numbers_in(text):
            allowed |= readings(number)
    bad = [n for n in numbers_in(answer) if abs(n).normalize() not in allowed]
    return [str(n) for n in dict.fromkeys(bad)]
