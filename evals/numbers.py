"""Reading the number an answer gives, or saying why there is none.

Signs, separators, multipliers, units and number words are understood.

The rules, in order:

- After an `=`, the answer is what follows the last one (`"2 + 2 = 4"` → 4).
- A number glued to a word is part of a name, not an answer (`"Model X-200 costs $50"` → 50,
  `"mp3"`, `"A4"`); a `-` is a sign only where a number starts (`"-3"`, `"= -3"`, `"(−3)"`).
- `"10-20"`, `"10 to 20"`, `"between 10 and 20"` are ranges: no single number (`range`).
- Multipliers: `k`/`K` (`"2.5k"`), `M`, `B`/`bn` written against the number (`"3M"`), and the
  words thousand, million, billion, trillion (`"3 billion"` → 3e9). A lower-case `m` is a unit
  (metres, minutes): `"5 m"` → 5 with unit `m`, never 5e6.
- Number words up to the trillions (`"twenty-one"` → 21, `"three billion"` → 3e9).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_ATTACHED = {"k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "bn": 1e9}
_NUMBER = re.compile(
    r"(?P<sign>[-+−]\s*)?(?P<cur>[$€£¥]\s*)?"
    r"(?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?P<exp>[eE][-+]?\d+)?"
    r"(?:(?P<att>bn|[kKMB])(?![A-Za-z0-9]))?(?![0-9])"
    r"(?:\s*(?P<scale>thousand|million|billion|trillion)\b)?"
    r"(?:\s*(?P<unit>%|[A-Za-zµ°][A-Za-z/²³]*))?"
)
_RANGE = re.compile(
    r"(?<![A-Za-z0-9.])\d[\d,.]*\s*(?:-|–|—|to)\s*[$€£¥]?\d|between\s+[$€£¥]?\d[\d,.]*\s+and\s+\d",
    re.IGNORECASE,
)
_ONES = {
    w: i
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        ]
    )
}
_TENS = {
    w: 10 * i
    for i, w in enumerate(
        ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"], 2
    )
}
_WORD = re.compile(
    r"\b(?:minus\s+|negative\s+)?(?:(?:"
    + "|".join([*_ONES, *_TENS, "hundred", *_SCALES, "and"])
    + r")(?:[\s-]+|\b))+",
    re.IGNORECASE,
)
_NOT_UNITS = frozenset({"and", "or", "to", "the", "a", "an", "of", "is", "in", "per", "for", "x"})


@dataclass(frozen=True)
class Parsed:
    """What `parse_answer` read: a value (None when it could not) and why not."""

    value: float | None
    unit: str | None = None
    failure: str | None = None
    """`no_number`, `range` or `not_finite` when `value` is None."""


def parse_answer(text: str | float | int | None) -> Parsed:
    """The number an answer gives, its unit, or the reason it gives none.

    Example:
        >>> parse_answer("5 m")
        Parsed(value=5.0, unit='m', failure=None)
        >>> parse_answer("10-20 units").failure
        'range'
    """
    if text is None:
        return Parsed(None, failure="no_number")
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
        return Parsed(value) if math.isfinite(value) else Parsed(None, failure="not_finite")
    s = str(text)
    if "=" in s:
        s = s.rsplit("=", 1)[1]
    if _RANGE.search(s):
        return Parsed(None, failure="range")
    for found in _NUMBER.finditer(s):
        start = found.start()
        if start and (s[start - 1].isalnum() or s[start - 1] in "._"):
            continue  # glued to a word or another number: part of a name ("X-200", "A4")
        if found["sign"] and start and s[start - 1] in "-+":
            continue
        if found["sign"] and start and s[start - 1].isalpha():
            continue
        value = float(found["num"].replace(",", "") + (found["exp"] or ""))
        if found["att"]:
            value *= _ATTACHED[found["att"]]
        if found["scale"]:
            value *= _SCALES[found["scale"].lower()]
        if found["sign"] and found["sign"].strip() in ("-", "−"):
            value = -value
        if not math.isfinite(value):
            return Parsed(None, failure="not_finite")
        unit = found["unit"]
        if unit is not None and unit.lower() in _NOT_UNITS:
            unit = None
        return Parsed(value, unit)
    words = _words_value(s)
    if words is not None:
        return Parsed(words)
    return Parsed(None, failure="no_number")


def parse_number(text: str | float | int | None) -> float | None:
    """The number an answer gives (see `parse_answer`), or None."""
    return parse_answer(text).value


def _words_value(text: str) -> float | None:
    """The first number written in words (`"twenty-one"`, `"three billion"`), or None."""
    for found in _WORD.finditer(text):
        tokens = [t.lower() for t in re.split(r"[\s-]+", found.group(0).strip()) if t]
        negative = tokens[0] in ("minus", "negative")
        tokens = [t for t in tokens if t not in ("minus", "negative", "and")]
        if not tokens or tokens[0] in _SCALES or tokens[0] == "hundred":
            continue
        total, current = 0.0, 0.0
        for t in tokens:
            if t in _ONES:
                current += _ONES[t]
            elif t in _TENS:
                current += _TENS[t]
            elif t == "hundred":
                current *= 100
            else:
                total += current * _SCALES[t]
                current = 0.0
        value = total + current
        return -value if negative else value
    return None
