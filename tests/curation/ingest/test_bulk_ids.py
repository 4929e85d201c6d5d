"""The bulk path's ids and canonical forms are `schema.record_id`'s; its blank test is Python's."""

from __future__ import annotations

import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from curation.ingest.bulk import canonical, core_from_rows, record_ids
from curation.ingest.bulk_arrow import WHITESPACE
from curation.ingest.row import Normalized
from curation.schema import canonical_bytes, record_id

_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_NORMALIZED = st.one_of(
    st.builds(lambda t: Normalized("text", t, None, None, None), _TEXT),
    st.builds(
        lambda turns, rej: Normalized(
            "preference" if rej is not None else "chat",
            "\n\n".join(c for _, c in turns),
            tuple(turns),
            rej,
            None,
        ),
        st.lists(
            st.tuples(st.sampled_from(["user", "assistant", "system"]), _TEXT),
            min_size=1,
            max_size=4,
        ),
        st.one_of(st.none(), _TEXT),
    ),
)


@settings(max_examples=100, deadline=None)
@given(records=st.lists(_NORMALIZED, min_size=1, max_size=20))
def test_bulk_ids_equal_the_reference_record_id(records: list[Normalized]) -> None:
    core = core_from_rows(records)
    expected = [record_id(r.kind, r.text, r.messages, r.rejected) for r in records]
    ids, keys = record_ids(core)
    assert ids.to_pylist() == expected
    assert keys.tobytes() == bytes.fromhex("".join(expected))
    forms = canonical(core).to_pylist()
    assert [f.encode() for f in forms] == [
        canonical_bytes(r.kind, r.text, r.messages, r.rejected) for r in records
    ]


def test_canonical_form_separates_what_concatenation_would_not() -> None:
    a = record_id("chat", "", (("user", "ab"), ("assistant", "c")), None)
    b = record_id("chat", "", (("user", "a"), ("assistant", "bc")), None)
    c = record_id("chat", "", (("user", "ab"), ("assistant", "c")), "x")
    d = record_id("text", "1:x", None, None)
    e = record_id("text", "x", None, None)
    assert len({a, b, c, d, e}) == 5
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in (a, b, c, d, e))


def test_whitespace_table_is_pythons() -> None:
    assert list(WHITESPACE) == [c for c in range(sys.maxunicode + 1) if chr(c).isspace()]
