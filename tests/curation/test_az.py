"""The lake on Azure Blob Storage, against a real Azure Blob API (Azurite on 127.0.0.1).

The lake commands on an az:// lake, two writers on one container, a killed holder's lease, a
lost lease refusing to commit, `--storage-option` and the emulator settings, and no key
written anywhere. The fixture installs and starts Azurite (see tests/curation/azurite.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from curation import Lake
from curation.commit import writer_lock
from curation.errors import CurationError
from curation.objectlock import ObjectStoreLock
from queries import open_mix
from tests.curation.azurite import (
    ACCOUNT,
    EMULATOR_ACCOUNT,
    SECRET,
    container_blobs,
    container_client,
    leaked_keys,
)
from tests.curation.crashkit import MIX_SPEC, check_lake, mixlake, start, text_rows, write_jsonl


def _ok(lake: str, *args: str) -> str:
    run = mixlake(lake, *args)  # type: ignore[arg-type]
    assert run.code == 0, f"{args}: {run.err[-600:]}"
    return run.err + run.out


def test_lake_commands_on_az(az_lake: str, tmp_path: Path) -> None:
    """Init, ingest, steps, sql, rollback, a mix and gc on an az:// lake, from the CLI."""
    rows = [*text_rows(300, "doc"), {"text": 5}]
    _ok(az_lake, "init")
    _ok(
        az_lake,
        "ingest",
        str(write_jsonl(tmp_path / "d.jsonl", rows)),
        "-s",
        "web",
        "--on-error",
        "skip",
    )
    _ok(az_lake, "score", "quality_heuristic_v1")
    _ok(az_lake, "dedup", "exact")
    _ok(az_lake, "tag", "clean")
    out = mixlake(az_lake, "sql", "SELECT count(*) AS n FROM records", "--format", "csv")  # type: ignore[arg-type]
    assert out.code == 0 and "300" in out.out
    lake = Lake(az_lake)
    assert lake.dataset("rejects").count_rows() == 1
    clean = check_lake(az_lake)  # type: ignore[arg-type]
    late = write_jsonl(tmp_path / "late.jsonl", text_rows(20, "late"))
    _ok(az_lake, "ingest", str(late), "-s", "late")
    assert check_lake(az_lake).rows == clean.rows + 20  # type: ignore[arg-type]
    _ok(az_lake, "rollback", "--to", "clean")
    back = check_lake(az_lake)  # type: ignore[arg-type]
    assert back.rows == clean.rows and back.columns == clean.columns
    spec = tmp_path / "crashmix.yaml"
    spec.write_text(MIX_SPEC)
    _ok(az_lake, "mix", "materialize", str(spec))
    _ok(az_lake, "gc", "--older-than", "0")
    assert "rollback" in _ok(az_lake, "log")
    assert any("quality" in c for c in check_lake(az_lake).columns)  # type: ignore[arg-type]
    assert open_mix(Lake(az_lake), "crashmix").rows("train").num_rows > 0
    # the lease is gone once the writers finished, and the key was written nowhere
    blobs = container_blobs(az_lake)
    assert any(n.startswith("lake/records.lance/") for n in blobs)
    assert not any(n.endswith("_mixlake/writer.lock") for n in blobs)
    assert leaked_keys(az_lake, tmp_path) == []


def test_two_writers_on_one_container(az_lake: str, tmp_path: Path) -> None:
    """Two ingests of one file at once: each row once, one version made (the other adds 0)."""
    data = write_jsonl(tmp_path / "same.jsonl", text_rows(5000, "same"))
    _ok(az_lake, "init")
    a = start(az_lake, "ingest", str(data), "-s", "web")  # type: ignore[arg-type]
    b = start(az_lake, "ingest", str(data), "-s", "web")  # type: ignore[arg-type]
    for p in (a, b):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-500:]
    state = check_lake(az_lake)  # type: ignore[arg-type]
    assert state.rows == 5000 and state.version == 2


def test_a_killed_holder_loses_its_lease(az_lake: str, tmp_path: Path) -> None:
    """A writer waits for a live holder; once it is killed -9 its lease expires."""
    _ok(az_lake, "init")
    env = {**os.environ, "MIXLAKE_LOCK_TTL": "2"}
    script = f"""
        import time
        from curation.commit import writer_lock
        with writer_lock({az_lake!r}, "a stuck job"):
            print("held", flush=True)
            time.sleep(120)
        """
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    data = write_jsonl(tmp_path / "d.jsonl", text_rows(10, "d"))
    command = [sys.executable, "-m", "mixlake", "ingest", str(data), "-s", "d"]
    env["MIXLAKE_LAKE"] = az_lake
    waiting = subprocess.run(
        command, capture_output=True, text=True, env={**env, "MIXLAKE_LOCK_TIMEOUT": "0"}
    )
    assert waiting.returncode == 2 and "a stuck job" in waiting.stderr
    assert check_lake(az_lake).rows == 0  # type: ignore[arg-type]
    holder.kill()  # kill -9: the lease is never released, only expires
    holder.wait()
    started = time.monotonic()
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr[-400:]
    assert time.monotonic() - started < 60
    assert check_lake(az_lake).rows == 10  # type: ignore[arg-type]


def test_a_lost_lease_refuses_to_commit(az_lake: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """When another writer replaced an expired lease, the heartbeat notices and check() refuses."""
    monkeypatch.setenv("MIXLAKE_LOCK_TTL", "1")
    lease = ObjectStoreLock(az_lake, "slow job")
    lease.acquire(0, None)
    try:
        lease.check()  # held: nothing to say
        container = az_lake.removeprefix("az://").split("/", 1)[0]
        endpoint = os.environ["AZURE_STORAGE_ENDPOINT"].rsplit("/", 1)[0]
        blob = container_client(endpoint, container).get_blob_client("lake/_mixlake/writer.lock")
        blob.upload_blob(b'{"holder": "the next writer"}', overwrite=True)
        deadline = time.monotonic() + 10
        while not lease.lost and time.monotonic() < deadline:
            time.sleep(0.1)
        with pytest.raises(CurationError, match="lost the lake's writer lock"):
            lease.check()
    finally:
        lease.release()
    # release leaves the other writer's lease alone
    assert blob.download_blob().readall() == b'{"holder": "the next writer"}'


def test_a_paused_holder_does_not_commit(az_lake: str, tmp_path: Path) -> None:
    """A holder stopped (SIGSTOP) past its lease resumes after another writer committed.

    Its ingest refuses to commit, so the other writer's rows are the only ones.
    """
    _ok(az_lake, "init")
    env = {**os.environ, "MIXLAKE_LOCK_TTL": "2", "MIXLAKE_LAKE": az_lake}
    paused = write_jsonl(tmp_path / "paused.jsonl", text_rows(7, "paused"))
    script = f"""
        import sys
        from curation import Lake
        from curation.commit import writer_lock
        from curation.errors import CurationError
        lake = Lake({az_lake!r})
        with writer_lock({az_lake!r}, "a paused job"):
            print("held", flush=True)
            sys.stdin.readline()
            try:
                lake.ingest([{str(paused)!r}], source="paused")
            except CurationError as e:
                print("refused:", e, flush=True)
        """
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    os.kill(holder.pid, signal.SIGSTOP)
    try:
        data = write_jsonl(tmp_path / "d.jsonl", text_rows(10, "d"))
        command = [sys.executable, "-m", "mixlake", "ingest", str(data), "-s", "d"]
        run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        assert run.returncode == 0, run.stderr[-400:]
    finally:
        os.kill(holder.pid, signal.SIGCONT)
    out, _ = holder.communicate("\n", timeout=120)
    assert "refused: lost the lake's writer lock" in out
    state = check_lake(az_lake)  # type: ignore[arg-type]
    assert state.rows == 10 and state.version == 2


def test_a_stalled_heartbeat_counts_as_lost(az_lake: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No renewal for a whole lease time: check() refuses even before any renewal failed."""
    monkeypatch.setenv("MIXLAKE_LOCK_TTL", "1")
    lease = ObjectStoreLock(az_lake, "stalled job")
    lease.acquire(0, None)
    try:
        lease.check()
        lease._stop.set()  # the heartbeat stalls (a hung request, a starved thread)
        assert lease._thread is not None
        lease._thread.join()
        time.sleep(1.1)
        assert not lease.lost  # nothing failed: only the lease's age tells
        with pytest.raises(CurationError, match="lost the lake's writer lock"):
            lease.check()
    finally:
        lease.release()
    assert "lake/_mixlake/writer.lock" not in container_blobs(az_lake)  # still ours: deleted


def test_storage_options_on_the_command_line(az_lake: str, az_server: str, tmp_path: Path) -> None:
    """With no AZURE_* variables, `--storage-option` carries account, key and endpoint.

    The key ends up nowhere in the container nor in the output.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    opts = [
        f"--storage-option=account_name={os.environ['AZURE_STORAGE_ACCOUNT_NAME']}",
        f"--storage-option=account_key={SECRET}",
        f"--storage-option=azure_storage_endpoint={os.environ['AZURE_STORAGE_ENDPOINT']}",
        "--storage-option=allow_http=true",
    ]
    data = write_jsonl(tmp_path / "d.jsonl", text_rows(30, "opt"))
    for args in (("init",), ("ingest", str(data), "-s", "opt"), ("log",)):
        done = subprocess.run(
            [sys.executable, "-m", "mixlake", *args, "--lake", az_lake, *opts],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-500:]
        assert SECRET not in done.stderr + done.stdout
    assert check_lake(az_lake).rows == 30  # type: ignore[arg-type]
    assert leaked_keys(az_lake) == []


def test_the_emulator_settings(az_server: str, tmp_path: Path) -> None:
    """`use_emulator=true` (Python storage options): Lance and the lease use Azurite's dev key.

    Lance still needs the account's name to place the lake (`account_name`). It runs in a
    child process: Lance keeps the Azure settings it first saw for the rest of a process.
    """
    emulated = container_client(az_server, "emulated", account=EMULATOR_ACCOUNT)
    emulated.create_container()
    data = write_jsonl(tmp_path / "d.jsonl", text_rows(5, "emu"))
    script = f"""
        import pytest
        from curation import Lake
        from curation.commit import writer_lock
        from curation.errors import CurationError
        from curation.objectlock import ObjectStoreLock
        from tests.curation.crashkit import check_lake

        options = {{"use_emulator": "true", "account_name": {EMULATOR_ACCOUNT!r},
                    "AZURITE_BLOB_STORAGE_URL": {az_server!r}}}
        lake = Lake.create("az://emulated/lake", storage_options=options)
        with writer_lock("az://emulated/lake", "held by this test"):
            print("held", flush=True)
            input()
            with pytest.raises(CurationError, match="held by this test"):
                ObjectStoreLock("az://emulated/lake", "a second writer").acquire(0, None)
        lake.ingest([{str(data)!r}], source="emu")
        print("rows", check_lake("az://emulated/lake").rows, flush=True)
        """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "AZURITE_"))}
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None and child.stdin is not None
    assert child.stdout.readline().strip() == "held", child.communicate()[1][-800:]
    assert "lake/_mixlake/writer.lock" in [b.name for b in emulated.list_blobs()]
    out, err = child.communicate("\n", timeout=120)
    assert child.returncode == 0, err[-800:]
    assert out.split() == ["rows", "5"]
    names = [b.name for b in emulated.list_blobs()]
    assert "lake/_mixlake/writer.lock" not in names
    assert any(n.startswith("lake/records.lance/") for n in names)


def test_an_abfss_uri_names_the_same_lake(az_lake: str, tmp_path: Path) -> None:
    """`abfss://container@account.dfs.core.windows.net/prefix` shares the az:// lake's lease."""
    container = az_lake.removeprefix("az://").split("/", 1)[0]
    abfss = f"abfss://{container}@{ACCOUNT}.dfs.core.windows.net/lake"
    lake = Lake.create(abfss)
    with (
        writer_lock(az_lake, "held as az://"),
        pytest.raises(CurationError, match="held as az://"),
    ):
        ObjectStoreLock(abfss, "a second writer").acquire(0, None)
    lake.ingest([write_jsonl(tmp_path / "d.jsonl", text_rows(3, "abfss"))], source="abfss")
    assert check_lake(az_lake).rows == 3  # type: ignore[arg-type]


def test_gs_writes_still_need_the_single_writer_promise(monkeypatch: pytest.MonkeyPatch) -> None:
    """gs:// has no lease (see docs/scale.md): writes are refused unless the user vouches."""
    monkeypatch.delenv("MIXLAKE_SINGLE_WRITER", raising=False)
    with (
        pytest.raises(CurationError, match="MIXLAKE_SINGLE_WRITER=1"),
        writer_lock("gs://bucket/lake", "ingest"),
    ):
        pass
    monkeypatch.setenv("MIXLAKE_SINGLE_WRITER", "1")
    with writer_lock("gs://bucket/lake", "ingest"):
        pass
