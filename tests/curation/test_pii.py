"""PII detection: positives of every kind and the hard negatives that must not match."""

from __future__ import annotations

import pytest

from curation.pii import PiiSpan, find_pii, luhn_ok, redact


def kinds(text: str) -> list[tuple[str, str]]:
    return [(s.kind, text[s.start : s.end]) for s in find_pii(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail me at jane.doe+news@example.co.uk today", ("email", "jane.doe+news@example.co.uk")),
        ("Contact: bob_smith99@mail-server.org.", ("email", "bob_smith99@mail-server.org")),
        ("call (415) 555-2671 now", ("phone", "(415) 555-2671")),
        ("call 415-555-2671.", ("phone", "415-555-2671")),
        ("call 415.555.2671 now", ("phone", "415.555.2671")),
        ("toll free 1-800-555-0199 ok", ("phone", "1-800-555-0199")),
        ("US +1 415 555 2671 ok", ("phone", "+1 415 555 2671")),
        ("London +44 20 7946 0958 ok", ("phone", "+44 20 7946 0958")),
        ("Paris +33 1 23 45 67 89", ("phone", "+33 1 23 45 67 89")),
        ("server at 192.168.1.20 is down", ("ip", "192.168.1.20")),
        ("ping 8.8.8.8.", ("ip", "8.8.8.8")),
        ("v6 2001:db8:85a3::8a2e:370:7334 up", ("ip", "2001:db8:85a3::8a2e:370:7334")),
        ("full fe80:0:0:0:202:b3ff:fe1e:8329 up", ("ip", "fe80:0:0:0:202:b3ff:fe1e:8329")),
        ("card 4111 1111 1111 1111 exp", ("credit_card", "4111 1111 1111 1111")),
        ("card 5500-0000-0000-0004 exp", ("credit_card", "5500-0000-0000-0004")),
        ("amex 378282246310005 exp", ("credit_card", "378282246310005")),
        ("key AKIAIOSFODNN7EXAMPLE here", ("secret", "AKIAIOSFODNN7EXAMPLE")),
        (
            "OPENAI_API_KEY=sk-proj-abc123DEF456ghi789JKL012mno",
            ("secret", "sk-proj-abc123DEF456ghi789JKL012mno"),
        ),
        (
            "token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 pushed",
            ("secret", "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"),
        ),
        ('api_key = "q8Zr2LmX9pT4vW7nK3bY6hJ1"', ("secret", "q8Zr2LmX9pT4vW7nK3bY6hJ1")),
        ("password: Xk29fLq8Zm3Rt7Wp", ("secret", "Xk29fLq8Zm3Rt7Wp")),
        ("use key=q8Zr2LmX9pT4vW7nK3bY6hJ1 here", ("secret", "q8Zr2LmX9pT4vW7nK3bY6hJ1")),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0", None),
    ],
)
def test_positives(text: str, expected: tuple[str, str] | None) -> None:
    found = kinds(text)
    if expected is None:
        assert [k for k, _ in found] == ["secret"]
    else:
        assert found == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "released on 2023-01-15 at 12:30:45",
        "meeting 12/25/2023 or 25.12.2023",
        "timestamp 2023-01-15T12:30:45.123Z and 1700000000",
        "upgrade to version 1.2.3 or v2.10.4.1 or Python 3.11.4",
        "built with gcc 4.0.30319.42000",
        "it costs $1,234.56 or €1.234.567,89 or 1,234,567",
        "ssn-like 123-45-6789 and zip 94107-1234",
        "pages 100-200, ISBN 978-3-16-148410-0",
        "order number 1234567890123456 is not a card",
        "account 4111 1111 1111 1112 fails luhn",
        "the ratio 3:4:5 and time 10:20:30",
        "std::vector<int> and a::b::c in C++",
        "MAC 00:1A:2B:3C:4D:5E is hardware",
        "score 0.98.3 and 300.1.2.3 and 256.1.1.1",
        "contact us at support at example dot com",
        "token = the_quick_brown_fox_jumps",
        "path = /usr/local/lib/python3.11/site-packages",
        "my key=short1",
        "the monkey=Q8Zr2LmX9pT4vW7nK3bY6hJ1 is not a key name",
        "sku-12345678901234567890 is a product",
        "",
    ],
)
def test_hard_negatives(text: str) -> None:
    assert find_pii(text) == []


def test_luhn() -> None:
    assert luhn_ok("4111111111111111")
    assert luhn_ok("79927398713")
    assert not luhn_ok("4111111111111112")


def test_several_kinds_sorted_and_redacted() -> None:
    text = "Email a@b.io or call 415-555-2671 from 10.0.0.1; card 4111111111111111."
    spans = find_pii(text)
    assert [s.kind for s in spans] == ["email", "phone", "ip", "credit_card"]
    assert spans == sorted(spans)
    assert all(isinstance(s, PiiSpan) for s in spans)
    redacted, n = redact(text)
    assert n == 4
    assert redacted == "Email [EMAIL] or call [PHONE] from [IP]; card [CREDIT_CARD]."


def test_redact_secret_keeps_key_name() -> None:
    redacted, n = redact("export AWS_KEY=AKIAIOSFODNN7EXAMPLE\napi_key: q8Zr2LmX9pT4vW7nK3bY6hJ1")
    assert n == 2
    assert redacted == "export AWS_KEY=[SECRET]\napi_key: [SECRET]"


def test_private_key_block_is_one_secret() -> None:
    block = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow1x\nAbC9\n-----END RSA PRIVATE KEY-----"
    redacted, n = redact(f"key:\n{block}\nend")
    assert (redacted, n) == ("key:\n[SECRET]\nend", 1)


def test_overlap_prefers_longer_span() -> None:
    # The phone-like digits inside the email are part of the email, not a second span.
    text = "write to sales.415-555-2671@shop.com"
    assert kinds(text) == [("email", "sales.415-555-2671@shop.com")]


def test_clean_text_untouched() -> None:
    text = "The quick brown fox jumps over 13 lazy dogs in 2024."
    assert redact(text) == (text, 0)
