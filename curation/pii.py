"""Find and redact personal data and secrets in text.

`find_pii(text)` returns the spans of emails, phone numbers, IPv4/IPv6 addresses, credit-card
numbers (Luhn-checked, known card prefixes and lengths) and API-key-like secrets.
`redact(text)` replaces each span with a tag such as `[EMAIL]` and counts them.

Detection favours precision over recall: dates, version numbers, prices, timestamps, SSN-like
codes and bare digit runs are not phones or IPs; a digit run is a card only when it passes the
Luhn check and starts like a real card. Nothing here rewrites the lake: the `pii` step counts
spans into columns, and export applies `redact` to what leaves the lake.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from dataclasses import dataclass

EMAIL = "email"
PHONE = "phone"
IP = "ip"
CREDIT_CARD = "credit_card"
SECRET = "secret"

KINDS: tuple[str, ...] = (EMAIL, PHONE, IP, CREDIT_CARD, SECRET)
"""Every kind `find_pii` reports, in a fixed order."""

TAGS: dict[str, str] = {
    EMAIL: "[EMAIL]",
    PHONE: "[PHONE]",
    IP: "[IP]",
    CREDIT_CARD: "[CREDIT_CARD]",
    SECRET: "[SECRET]",
}
"""The replacement `redact` writes for each kind."""

# When two detections overlap, the longer wins; on equal length, the earlier kind here.
_PRIORITY = {SECRET: 0, EMAIL: 1, CREDIT_CARD: 2, IP: 3, PHONE: 4}


@dataclass(frozen=True, order=True)
class PiiSpan:
    """One detection: `text[start:end]` is personal data or a secret of `kind`."""

    start: int
    end: int
    kind: str

    @property
    def tag(self) -> str:
        """The redaction tag for this span, e.g. `[EMAIL]`."""
        return TAGS[self.kind]


_EMAIL_RE = re.compile(
    r"(?<![\w.+%-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)

# North American numbers need a separator or parentheses: bare 10-digit runs are more often
# ids or Unix timestamps than phones. The area code starts with 2-9 (NANP).
_PHONE_NA_RE = re.compile(
    r"(?<![\w+.\-/:$€£])"
    r"(?:\+?1[ .-]?)?"
    r"(?:\([2-9]\d{2}\)[ .-]?|[2-9]\d{2}(?P<sep>[ .-]))"
    r"\d{3}[ .-]\d{4}"
    r"(?![\w\-/:$€£]|[.,]\d)"
)
# International numbers must start with `+` and hold 8-15 digits (E.164).
_PHONE_INTL_RE = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){1,5}(?![\w\-/:]|[.,]\d)")

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4_RE = re.compile(rf"(?<![\w.\-])(?P<ip>{_OCTET}(?:\.{_OCTET}){{3}})(?![\w\-]|\.\d)")
_VERSION_BEFORE_RE = re.compile(r"(?i)(?:\bv|version|release|build|ver\.?)\s*$")
_IPV6_CANDIDATE_RE = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{0,4}|\d{1,3}(?:\.\d{1,3}){3})(?![\w:])"
)

_CARD_RE = re.compile(r"(?<![\w.,\-])(?:\d[ -]?){12,18}\d(?![\w\-]|[.,]\d)")

# Each pattern with the literal strings one of which must occur for it to match: checking
# those with `in` first keeps the regexes off the ~all texts that hold no secret.
_SECRET_PATTERNS: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = (
    (
        ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA"),
        re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"),  # AWS access key id
    ),
    (("sk-",), re.compile(r"(?<![\w-])sk-(?:proj-|ant-|live_|test_)?[A-Za-z0-9_\-]{20,}")),
    (("gh",), re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}\b")),  # GitHub
    (("github_pat_",), re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b")),
    (("glpat-",), re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}\b")),  # GitLab
    (("xox",), re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b")),  # Slack
    (("AIza",), re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b")),  # Google API key
    (("hf_",), re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")),  # Hugging Face
    (
        ("PRIVATE KEY",),
        re.compile(
            r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )?PRIVATE KEY-----"
        ),
    ),
)
_ASSIGNMENT_WORDS = ("key", "secret", "token", "passw", "pwd", "authorization", "bearer")
_DIGIT_RE = re.compile(r"\d")
# A long token right after `key=`, `token: "…"`, `password=` and the like; the value is the span.
_ASSIGNED_SECRET_RE = re.compile(
    r"(?i)(?<![a-z])(?:api[_-]?key|apikey|secret(?:[_-]?key)?|client[_-]?secret|access[_-]?key"
    r"|(?:access|auth|bearer|refresh|session)[_-]?token|token|password|passwd|pwd"
    r"|private[_-]?key|authorization|key)"
    r"[\"']?\s*(?:[:=]|=>)\s*[\"']?(?:bearer\s+)?(?P<value>[A-Za-z0-9_\-./+=~]{16,})"
)
_BEARER_RE = re.compile(r"(?i)\bbearer\s+(?P<value>[A-Za-z0-9_\-.~+/=]{20,})")

_CARD_LENGTHS: tuple[tuple[tuple[str, ...], tuple[int, ...]], ...] = (
    (("4",), (13, 16, 19)),  # Visa
    (("51", "52", "53", "54", "55"), (16,)),  # Mastercard
    (tuple(str(p) for p in range(2221, 2721)), (16,)),  # Mastercard 2-series
    (("34", "37"), (15,)),  # American Express
    (("300", "301", "302", "303", "304", "305", "36", "38", "39"), (14, 16)),  # Diners
    (("6011", "65", "644", "645", "646", "647", "648", "649"), (16, 19)),  # Discover
    (tuple(str(p) for p in range(3528, 3590)), (16, 19)),  # JCB
    (("62",), (16, 17, 18, 19)),  # UnionPay
)


def luhn_ok(digits: str) -> bool:
    """Return whether a string of digits passes the Luhn checksum."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _looks_like_card(digits: str) -> bool:
    if not 13 <= len(digits) <= 19 or len(set(digits)) < 2:
        return False
    for prefixes, lengths in _CARD_LENGTHS:
        if len(digits) in lengths and digits.startswith(prefixes):
            return luhn_ok(digits)
    return False


def _entropy(value: str) -> float:
    counts = Counter(value)
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _looks_like_secret(value: str) -> bool:
    """A value is secret-like when it is long, mixes letters and digits, and is not prose."""
    value = value.rstrip(".")
    if len(value) < 16:
        return False
    has_digit = any(c.isdigit() for c in value)
    has_alpha = any(c.isalpha() for c in value)
    if not (has_digit and has_alpha):
        return False
    if "/" in value and value.count("/") > 2 and not any(c.isupper() for c in value):
        return False  # a path such as /usr/local/lib/python3.11
    return _entropy(value) >= 3.5


def _phones(text: str) -> list[PiiSpan]:
    spans = [PiiSpan(m.start(), m.end(), PHONE) for m in _PHONE_NA_RE.finditer(text)]
    for m in _PHONE_INTL_RE.finditer(text):
        n_digits = sum(c.isdigit() for c in m.group())
        if 8 <= n_digits <= 15:
            spans.append(PiiSpan(m.start(), m.end(), PHONE))
    return spans


def _ips(text: str) -> list[PiiSpan]:
    spans = []
    for m in _IPV4_RE.finditer(text):
        if not _VERSION_BEFORE_RE.search(text, max(0, m.start() - 10), m.start()):
            spans.append(PiiSpan(m.start("ip"), m.end("ip"), IP))
    if text.count(":") >= 2:
        for m in _IPV6_CANDIDATE_RE.finditer(text):
            candidate = m.group()
            groups = [g for g in candidate.split(":") if g]
            if len(groups) < 3 and candidate not in ("::1",):
                continue
            if not any(c.isalpha() for c in candidate) and "::" not in candidate:
                continue  # all-decimal groups without `::` read as times or ratios
            try:
                ipaddress.IPv6Address(candidate)
            except ValueError:
                continue
            spans.append(PiiSpan(m.start(), m.end(), IP))
    return spans


def _cards(text: str) -> list[PiiSpan]:
    spans = []
    for m in _CARD_RE.finditer(text):
        raw = m.group()
        if " " in raw and "-" in raw:
            continue  # mixed separators: a list of numbers, not a card
        if _looks_like_card(raw.replace(" ", "").replace("-", "")):
            spans.append(PiiSpan(m.start(), m.end(), CREDIT_CARD))
    return spans


def _secrets(text: str) -> list[PiiSpan]:
    spans = [
        PiiSpan(m.start(), m.end(), SECRET)
        for triggers, pattern in _SECRET_PATTERNS
        if any(t in text for t in triggers)
        for m in pattern.finditer(text)
    ]
    lower = text.lower()
    if not any(w in lower for w in _ASSIGNMENT_WORDS):
        return spans
    for pattern in (_ASSIGNED_SECRET_RE, _BEARER_RE):
        for m in pattern.finditer(text):
            value = m.group("value")
            if _looks_like_secret(value):
                end = m.start("value") + len(value.rstrip("."))
                spans.append(PiiSpan(m.start("value"), end, SECRET))
    return spans


def _resolve_overlaps(spans: list[PiiSpan]) -> list[PiiSpan]:
    """Keep the longest span where detections overlap (kind priority on ties)."""
    ranked = sorted(spans, key=lambda s: (s.start - s.end, _PRIORITY[s.kind], s.start))
    kept: list[PiiSpan] = []
    for span in ranked:
        if all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    return sorted(kept)


def find_pii(text: str) -> list[PiiSpan]:
    """Find personal data and secrets in `text`.

    Args:
        text: Any string.

    Returns:
        Non-overlapping spans sorted by position; `text[s.start:s.end]` is the match.
    """
    if not text:
        return []
    spans: list[PiiSpan] = []
    if "@" in text:
        spans += [PiiSpan(m.start(), m.end(), EMAIL) for m in _EMAIL_RE.finditer(text)]
    if _DIGIT_RE.search(text):
        spans += _phones(text)
        spans += _ips(text)
        spans += _cards(text)
    spans += _secrets(text)
    return _resolve_overlaps(spans) if spans else []


def redact(text: str) -> tuple[str, int]:
    """Replace every span `find_pii` finds with its tag.

    The tags are `[EMAIL]`, `[PHONE]`, `[IP]`, `[CREDIT_CARD]` and `[SECRET]`.

    Args:
        text: Any string.

    Returns:
        The redacted text and the number of spans replaced.
    """
    spans = find_pii(text)
    if not spans:
        return text, 0
    parts: list[str] = []
    pos = 0
    for span in spans:
        parts.append(text[pos : span.start])
        parts.append(span.tag)
        pos = span.end
    parts.append(text[pos:])
    return "".join(parts), len(spans)
