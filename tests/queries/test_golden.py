"""Golden mix: a spec on a tiny shipped table selects exactly the reviewed rows.

tests/queries/data/golden.jsonl has 30 text docs (score 0..6, lang en/fr/de in meta) and 12
chats. The reviewed selection (golden_expected.json): 9 scored docs with score >= 3, three per
language (stratified), doc 24 excluded; the 6 longest chats (order_by); 5 rows of the 4 docs
'golden doc 1…' not already taken by scored-docs, one of them repeated (max_repeats: 2).
"""

from __future__ import annotations

import json
from pathlib import Path

from curation import Lake
from queries import load_spec, materialize_mix

DATA = Path(__file__).parent / "data"


def test_golden_mix_selects_exactly_the_expected_rows(tmp_path: Path) -> None:
    lake = Lake.create(tmp_path / "lake")
    lake.ingest([DATA / "golden.jsonl"], source="golden")
    expected = json.loads((DATA / "golden_expected.json").read_text())
    mix = materialize_mix(lake, load_spec(DATA / "golden.yaml"))
    got = [[r["id"], r["component"], r["split"], r["repeat"]] for r in mix.rows().to_pylist()]
    assert got == expected["rows"]
    assert mix.checksum == expected["checksum"]
    _check_the_reviewed_semantics(lake, got)
    texts = [e["text"] for e in mix.examples()]
    assert sum(t.startswith("golden doc 24:") for t in texts) == 0
    assert sum(t.startswith("golden question") for t in texts) == 6


def _check_the_reviewed_semantics(lake: Lake, rows: list[list[object]]) -> None:
    """What the expected ids must mean.

    Regenerating the file (when the id hash changed) cannot slip in a different selection.
    """
    records = {r["id"]: r for r in lake.records().to_table().to_pylist()}

    def of(component: str) -> list[dict[str, object]]:
        return [records[str(r[0])] for r in rows if r[1] == component]

    scored = of("scored-docs")
    metas = [json.loads(str(r["meta"])) for r in scored]
    assert len(scored) == 9 and all(m["score"] >= 3 for m in metas)
    assert sorted(m["lang"] for m in metas) == ["de"] * 3 + ["en"] * 3 + ["fr"] * 3
    chats = [r for r in records.values() if r["kind"] == "chat"]
    longest = sorted(chats, key=lambda r: -len(str(r["text"])))[:6]
    assert {r["id"] for r in of("longest-chats")} == {r["id"] for r in longest}
    ones = of("doc-1x")
    assert len(ones) == 5 and len({r["id"] for r in ones}) == 4
    assert all(str(r["text"]).startswith("golden doc 1") for r in ones)
    assert not {r["id"] for r in ones} & {r["id"] for r in scored}
