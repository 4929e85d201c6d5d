"""Compare two materialized mixes: rows added and removed per component, composition change."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from curation import Lake
from queries.materialize import MaterializedMix, open_mix


@dataclass(frozen=True)
class ComponentDiff:
    """One component across two mixes (distinct records; repeats are not counted twice).

    Attributes:
        component: component name (in either mix).
        rows_a: rows in A (repeats counted).
        rows_b: rows in B.
        added: distinct records in B's component and not anywhere in A.
        removed: distinct records in A's component and not anywhere in B.
    """

    component: str
    rows_a: int
    rows_b: int
    added: int
    removed: int


@dataclass(frozen=True)
class MixDiff:
    """What changed from mix A to mix B.

    Attributes:
        a: `name@version` of A.
        b: `name@version` of B.
        same: whether the checksums are equal (identical ordered rows).
        records_versions: (A's, B's) pinned records version.
        components: per-component changes, in A's then B's order.
        common: distinct records in both.
        split_changes: records in both whose split differs (0 unless the split fractions
            changed).
    """

    a: str
    b: str
    same: bool
    records_versions: tuple[int, int]
    components: tuple[ComponentDiff, ...]
    common: int
    split_changes: int

    @property
    def added(self) -> int:
        """Distinct records in B and not in A."""
        return sum(c.added for c in self.components)

    @property
    def removed(self) -> int:
        """Distinct records in A and not in B."""
        return sum(c.removed for c in self.components)


def diff_mixes(lake: Lake, a: str, b: str) -> MixDiff:
    """Compare mix `a` with mix `b` (each `name` or `name@version`).

    Raises:
        QueryError: either mix does not exist.
    """
    ma, mb = open_mix(lake, a), open_mix(lake, b)
    return _diff(ma, mb)


def _diff(ma: MaterializedMix, mb: MaterializedMix) -> MixDiff:
    con = duckdb.connect()
    con.register("ta", ma.rows())
    con.register("tb", mb.rows())
    per = con.execute(
        """
        WITH ca AS (SELECT component, count(*) AS n FROM ta GROUP BY ALL),
             cb AS (SELECT component, count(*) AS n FROM tb GROUP BY ALL),
             add AS (SELECT component, count(DISTINCT id) AS n FROM tb
                     WHERE id NOT IN (SELECT id FROM ta) GROUP BY ALL),
             rem AS (SELECT component, count(DISTINCT id) AS n FROM ta
                     WHERE id NOT IN (SELECT id FROM tb) GROUP BY ALL),
             names AS (SELECT component FROM ca UNION SELECT component FROM cb)
        SELECT names.component, coalesce(ca.n, 0), coalesce(cb.n, 0),
               coalesce(add.n, 0), coalesce(rem.n, 0)
        FROM names LEFT JOIN ca USING (component) LEFT JOIN cb USING (component)
        LEFT JOIN add USING (component) LEFT JOIN rem USING (component)
        ORDER BY names.component
        """
    ).fetchall()
    common, moved = con.execute(
        """SELECT count(*), count(*) FILTER (WHERE sa <> sb) FROM (
             SELECT a.id, any_value(a.split) AS sa, any_value(b.split) AS sb
             FROM ta a JOIN tb b USING (id) GROUP BY a.id)"""
    ).fetchone() or (0, 0)
    order = {c: i for i, c in enumerate([*ma.components, *mb.components])}
    comps = sorted(
        (ComponentDiff(str(c), int(x), int(y), int(ad), int(rm)) for c, x, y, ad, rm in per),
        key=lambda d: order.get(d.component, len(order)),
    )
    return MixDiff(
        a=ma.ref,
        b=mb.ref,
        same=ma.checksum == mb.checksum,
        records_versions=(ma.records_version, mb.records_version),
        components=tuple(comps),
        common=int(common),
        split_changes=int(moved),
    )
