"""History for the UI: versions, tags, diffs, and the confirmed mutations (tag, rollback, delete)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from typing import Any

from curation import Lake, delete, diff, rollback
from curation.lake import VersionRef
from curation.sqltext import equals, in_list
from mixlake.web.errors import WebError
from mixlake.web.impact import indexes, pinned_after, schema_changes, values_in_batch

_BATCH = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MAX_IMPACT_IDS = 20000


def versions(lake: Lake) -> list[dict[str, Any]]:
    """Every version of `records`, newest first, with rows, tags and message."""
    return [
        {
            "version": e.version,
            "time": e.timestamp.strftime("%Y-%m-%d %H:%M:%S"),
            "rows": e.rows,
            "operation": e.operation,
            "message": e.message,
            "tags": list(e.tags),
        }
        for e in lake.log()
    ]


def tags(lake: Lake) -> list[dict[str, Any]]:
    """Tags (without pins) as name/version pairs."""
    return [{"name": n, "version": v} for n, v in lake.tags().items()]


def batches(lake: Lake) -> list[dict[str, Any]]:
    """Ingest batches at the latest version, with their source and row count."""
    con_rows = lake.sql(
        "SELECT batch, any_value(source) AS source, count(*) AS n, min(ingested_at) AS first_at "
        "FROM records GROUP BY batch ORDER BY first_at"
    ).to_pylist()
    return [
        {"batch": r["batch"], "source": r["source"], "rows": r["n"], "at": str(r["first_at"])[:19]}
        for r in con_rows
    ]


def version_diff(lake: Lake, a: VersionRef, b: VersionRef, examples: int = 5) -> dict[str, Any]:
    """Rows added and removed between two versions or tags, per source, with sample rows."""
    if a in (None, "") or b in (None, ""):
        raise WebError("a, b: give two versions or tags to compare")
    if not 0 <= examples <= 50:
        raise WebError(f"examples: must be between 0 and 50, got {examples}")
    d = diff(lake, a, b, examples=examples)
    return {
        "a": d.a,
        "b": d.b,
        "added": d.added,
        "removed": d.removed,
        "by_source": [
            {"source": s.source, "added": s.added, "removed": s.removed} for s in d.by_source
        ],
        "added_examples": d.added_examples,
        "removed_examples": d.removed_examples,
        "batches": batch_changes(lake, int(d.a), int(d.b)),
        **_columns_changed(lake, int(d.a), int(d.b)),
        "made_by": [
            {"version": e.version, "operation": e.operation, "message": e.message}
            for e in sorted(lake.log(), key=lambda e: e.version)
            if min(d.a, d.b) < e.version <= max(d.a, d.b)
        ],
    }


def _batch_rows(lake: Lake, version: int) -> dict[tuple[str, str], int]:
    table = lake.records(version).to_table(columns=["batch", "source"])
    got = table.group_by(["batch", "source"]).aggregate([("batch", "count")]).to_pylist()
    return {(r["batch"], r["source"]): int(r["batch_count"]) for r in got}


def batch_changes(lake: Lake, a: int, b: int) -> list[dict[str, Any]]:
    """The ingest batches whose rows differ between versions `a` and `b`.

    Each has its batch id, source, rows in each version, and whether the batch is new in `b`
    or gone from it.
    """
    then, now = _batch_rows(lake, a), _batch_rows(lake, b)
    out = []
    for key in sorted(set(then) | set(now)):
        rows_a, rows_b = then.get(key, 0), now.get(key, 0)
        if rows_a == rows_b:
            continue
        change = "added" if not rows_a else "removed" if not rows_b else "changed"
        out.append(
            {
                "batch": key[0],
                "source": key[1],
                "rows_a": rows_a,
                "rows_b": rows_b,
                "change": change,
            }
        )
    return out


def _columns_changed(lake: Lake, a: int, b: int) -> dict[str, Any]:
    """Columns and indexes `b` has that `a` lacks (added) and the other way round (removed)."""
    got = schema_changes(lake, a, b)
    return {
        "columns_added": got["columns_lost"],
        "columns_removed": got["columns_restored"],
        "indexes_added": got["indexes_lost"],
        "indexes_removed": got["indexes_restored"],
    }


def _impact(
    lake: Lake, where: str | None, batch: str | None, version: int | None
) -> dict[str, Any]:
    try:
        from training.runs import impact
    except ImportError:
        return {"available": False, "runs": [], "mixes": []}
    got = impact(lake, where=where, batch=batch, version=version)
    return {"available": True, "rows": got.rows, "runs": got.runs, "mixes": got.mixes}


def rollback_impact(lake: Lake, to: VersionRef) -> dict[str, Any]:
    """What rolling back to `to` would do.

    The rows dropped and re-added, the mixes and runs that used the rows it drops (through
    `training.runs.impact`, when training is installed), the columns and indexes lost or
    restored, and the mixes and runs built on later versions.
    """
    if to in (None, ""):
        raise WebError("to: give the version or tag to roll back to")
    target = lake.resolve(to)
    latest = lake.latest_version()
    if target == latest:
        raise WebError(f"records is already at version {target}; nothing to roll back", 409)
    d = diff(lake, target, latest, examples=5, ids=True)
    dropped = d.added_ids
    out: dict[str, Any] = {
        "to": target,
        "latest": latest,
        "rows_dropped": d.added,
        "rows_restored": d.removed,
        "dropped_examples": d.added_examples,
        "restored_examples": d.removed_examples,
    }
    if not dropped:
        out["impact"] = {"available": True, "rows": 0, "runs": [], "mixes": []}
    elif len(dropped) > MAX_IMPACT_IDS:
        out["impact"] = {"available": False, "runs": [], "mixes": [], "note": "too many rows"}
    else:
        out["impact"] = _impact(lake, in_list("id", dropped), None, latest)
    out.update(schema_changes(lake, target, latest))
    out["pinned_after"] = pinned_after(lake, target)
    return out


def delete_impact(lake: Lake, batch: str) -> dict[str, Any]:
    """What deleting an ingest batch would remove, and which mixes and runs used those rows."""
    _check_batch(batch)
    found = lake.records().count_rows(filter=equals("batch", batch))
    if found == 0:
        raise WebError(f"no batch {batch!r} in records at the latest version", 404)
    return {
        "batch": batch,
        "rows": found,
        "impact": _impact(lake, None, batch, None),
        "values_lost": values_in_batch(lake, batch),
        "indexes": indexes(lake.records()),
    }


def _check_batch(batch: str) -> None:
    if not _BATCH.match(batch or ""):
        raise WebError(f"batch: {batch!r} is not a batch id")


class Confirmer:
    """Confirmation tokens for mutations.

    A token is an HMAC of the action, its argument, the latest version and the time it was
    issued.

    A mutation runs only when its POST carries the token shown on the confirmation step, for
    the same action and argument, while `records` is still at the version the preview was
    computed on, and within `max_age` seconds; so a stray request, a replay or a click on a
    stale page cannot change the lake.
    """

    def __init__(self, secret: bytes | None = None, max_age: float = 900.0) -> None:
        self._secret = secret or secrets.token_bytes(32)
        self.max_age = max_age

    def _mac(self, action: str, arg: str, latest: int, issued: int) -> str:
        msg = f"{action}\0{arg}\0{latest}\0{issued}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()[:32]

    def token(self, action: str, arg: str, latest: int, now: float | None = None) -> str:
        """The token for `action` on `arg` while `records` is at version `latest`."""
        issued = int(time.time() if now is None else now)
        return f"{issued:x}-{self._mac(action, arg, latest, issued)}"

    def check(
        self, token: str | None, action: str, arg: str, latest: int, now: float | None = None
    ) -> None:
        """Raise a 400 unless `token` confirms this action on the lake as it is now."""
        if not token:
            raise WebError(f"{action}: not confirmed; open the confirmation step first")
        issued_hex, _, mac = str(token).partition("-")
        try:
            issued = int(issued_hex, 16)
        except ValueError:
            issued = -1
        if issued < 0 or not hmac.compare_digest(mac, self._mac(action, arg, latest, issued)):
            raise WebError(
                f"{action}: confirmation token does not match (another action or argument, "
                "the lake changed, or a stale page); confirm again"
            )
        if (time.time() if now is None else now) - issued > self.max_age:
            raise WebError(f"{action}: confirmation expired; open the confirmation step again")


def do_tag(lake: Lake, name: str, version: VersionRef) -> dict[str, Any]:
    """Tag a version (the latest when `version` is empty)."""
    number = lake.tag(name, version if version not in ("", None) else None)
    return {"tag": name, "version": number}


def do_rollback(lake: Lake, to: VersionRef) -> dict[str, Any]:
    """Roll back to `to` as a new version."""
    target = lake.resolve(to)
    new = rollback(lake, target)
    return {"to": target, "new_version": new}


def do_delete(lake: Lake, batch: str) -> dict[str, Any]:
    """Delete every row of one ingest batch as a new version."""
    _check_batch(batch)
    got = delete(lake, batch=batch)
    return {"batch": batch, "rows_removed": got.rows_removed, "new_version": got.version}
