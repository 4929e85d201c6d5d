"""The lake on object storage, against a real S3 API (moto_server on 127.0.0.1).

Every lake command, two writers on one bucket, a killed holder's lease, `mixlake train` and
`mixlake serve` on an s3:// lake, and no key written anywhere. The fixture starts the server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

from curation import Lake
from queries import open_mix
from tests.curation.crashkit import (
    MIX_SPEC,
    check_lake,
    mixlake,
    start,
    text_rows,
    write_jsonl,
)
from tests.curation.s3server import SECRET, bucket_objects, leaked_keys
from tests.services import free_port


def _ok(lake: str, *args: str) -> str:
    run = mixlake(lake, *args)  # type: ignore[arg-type]
    assert run.code == 0, f"{args}: {run.err[-600:]}"
    return run.err + run.out


def test_every_lake_command_on_s3(s3_lake: str, tmp_path: Path) -> None:
    rows = [*text_rows(300, "doc"), {"text": 5}]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    _ok(s3_lake, "init")
    _ok(s3_lake, "ingest", str(data), "-s", "web", "--on-error", "skip")
    _ok(s3_lake, "tag", "clean")
    _ok(s3_lake, "score", "quality_heuristic_v1")
    _ok(s3_lake, "dedup", "exact")
    out = mixlake(s3_lake, "sql", "SELECT count(*) AS n FROM records", "--format", "csv")  # type: ignore[arg-type]
    assert out.code == 0 and "300" in out.out
    assert "reason" in _ok(s3_lake, "rejects") or True
    lake = Lake(s3_lake)
    assert lake.dataset("rejects").count_rows() == 1
    late = write_jsonl(tmp_path / "late.jsonl", text_rows(20, "late"))
    _ok(s3_lake, "ingest", str(late), "-s", "late")
    _ok(s3_lake, "diff", "clean", "latest")
    _ok(s3_lake, "delete", "--where", "source = 'late'")
    _ok(s3_lake, "rollback", "--to", "clean")
    spec = tmp_path / "crashmix.yaml"
    spec.write_text(MIX_SPEC)
    _ok(s3_lake, "mix", "check", str(spec))
    _ok(s3_lake, "mix", "materialize", str(spec))
    _ok(s3_lake, "mix", "export", "crashmix", "--out", str(tmp_path / "out.jsonl"))
    ids = lake.sql("SELECT id FROM records ORDER BY id LIMIT 10").column(0).to_pylist()
    results = tmp_path / "results.jsonl"
    lines: list[dict[str, Any]] = [
        {"manifest": {"run_id": "rs3", "suite": "heldout", "mix": "eval-set:s3"}}
    ]
    lines += [{"id": i, "loss": 1.5, "perplexity": 4.5} for i in ids]
    results.write_text("".join(json.dumps(line) + "\n" for line in lines))
    _ok(s3_lake, "eval", "import", str(results))
    _ok(s3_lake, "gc", "--older-than", "0")
    _ok(s3_lake, "log")
    state = check_lake(s3_lake)  # type: ignore[arg-type]
    assert state.rows == 300 and "eval_rs3_heldout_loss" in state.columns
    assert open_mix(Lake(s3_lake), "crashmix").rows("train").num_rows > 0
    # the lease is gone once the writers finished, and no key was written anywhere (the
    # bucket, the export and its manifest)
    objects = bucket_objects(s3_lake)
    assert not any(k.endswith("_mixlake/writer.lock") for k in objects)
    assert leaked_keys(s3_lake, tmp_path) == []


def test_two_writers_on_one_bucket(s3_lake: str, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "same.jsonl", text_rows(5000, "same"))
    _ok(s3_lake, "init")
    a = start(s3_lake, "ingest", str(data), "-s", "web")  # type: ignore[arg-type]
    b = start(s3_lake, "ingest", str(data), "-s", "web")  # type: ignore[arg-type]
    for p in (a, b):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-500:]
    state = check_lake(s3_lake)  # type: ignore[arg-type]
    assert state.rows == 5000 and state.version == 2


def test_a_killed_holder_loses_its_lease(s3_lake: str, tmp_path: Path) -> None:
    _ok(s3_lake, "init")
    env = {**os.environ, "MIXLAKE_LOCK_TTL": "2"}
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import time
                from curation.commit import writer_lock
                with writer_lock({s3_lake!r}, "a stuck job"):
                    print("held", flush=True)
                    time.sleep(120)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    data = write_jsonl(tmp_path / "d.jsonl", text_rows(10, "d"))
    waiting = subprocess.run(
        [sys.executable, "-m", "mixlake", "ingest", str(data), "-s", "d"],
        capture_output=True,
        text=True,
        env={**env, "MIXLAKE_LAKE": s3_lake, "MIXLAKE_LOCK_TIMEOUT": "0"},
        check=False,
    )
    assert waiting.returncode == 2 and "a stuck job" in waiting.stderr
    holder.kill()  # kill -9: the lease is never released, only expires
    holder.wait()
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "mixlake", "ingest", str(data), "-s", "d"],
        capture_output=True,
        text=True,
        env={**env, "MIXLAKE_LAKE": s3_lake},
        check=False,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-400:]
    assert time.monotonic() - started < 60
    assert check_lake(s3_lake).rows == 10  # type: ignore[arg-type]


def test_storage_options_on_the_command_line(s3_lake: str, s3_server: str, tmp_path: Path) -> None:
    """With no AWS_* variables, `--storage-option` carries endpoint and keys.

    The secret ends up nowhere in the bucket.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    opts = [
        f"--storage-option=endpoint={s3_server}",
        "--storage-option=allow_http=true",
        "--storage-option=region=us-east-1",
        f"--storage-option=aws_access_key_id={os.environ['AWS_ACCESS_KEY_ID']}",
        f"--storage-option=aws_secret_access_key={SECRET}",
    ]
    data = write_jsonl(tmp_path / "d.jsonl", text_rows(30, "opt"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mixlake", *args, "--lake", s3_lake, *opts],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )

    for args in (("init",), ("ingest", str(data), "-s", "opt"), ("log",)):
        done = run(*args)
        assert done.returncode == 0, done.stderr[-500:]
        assert SECRET not in done.stderr + done.stdout
    assert check_lake(s3_lake).rows == 30  # type: ignore[arg-type]
    assert leaked_keys(s3_lake) == []


def test_serve_and_train_on_an_s3_lake(s3_lake: str, tmp_path: Path) -> None:
    """The web UI reads an s3:// lake, and a run trains from a mix pinned in it.

    The run's exposures, pin and per-row loss are written back to the bucket.
    """
    from fastapi.testclient import TestClient

    from mixlake.web import create_app
    from queries import materialize_mix, parse_spec
    from training import TrainConfig, train
    from training.testing import make_tiny_llama, texts_of, toy_chat_rows, toy_spec

    rows = toy_chat_rows(8)
    lake = Lake.create(s3_lake)
    lake.ingest([write_jsonl(tmp_path / "toy.jsonl", rows)], source="toy")
    materialize_mix(lake, parse_spec(toy_spec()))
    client = TestClient(create_app(s3_lake), base_url="http://127.0.0.1")
    got = client.get("/api/records", params={"limit": 3})
    assert got.status_code == 200, got.text
    model = make_tiny_llama(tmp_path / "model", texts_of(rows))
    config = TrainConfig(
        base_model=str(model),
        mix="toy",
        max_steps=2,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=1,
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        max_length=64,
        logging_steps=1,
        save_steps=100,
        output_dir=str(tmp_path / "runs"),
        device="cpu",
    )
    result = train(config, lake, progress=False)
    state = check_lake(s3_lake)  # type: ignore[arg-type]
    assert result.train_loss_column in state.columns
    assert Lake(s3_lake).dataset("exposures").count_rows() == result.exposures > 0


def _toy_lake(uri: str, tmp_path: Path) -> tuple[Lake, Path]:
    """A lake at `uri` holding the toy chat mix, and the tiny Llama trained on its texts."""
    from queries import materialize_mix, parse_spec
    from training.testing import make_tiny_llama, texts_of, toy_chat_rows, toy_spec

    rows = toy_chat_rows(8)
    lake = Lake.create(uri)
    lake.ingest([write_jsonl(tmp_path / "toy.jsonl", rows)], source="toy")
    materialize_mix(lake, parse_spec(toy_spec()))
    return lake, make_tiny_llama(tmp_path / "model", texts_of(rows))


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


def test_train_then_serve_from_the_cli_on_an_s3_lake(s3_lake: str, tmp_path: Path) -> None:
    """`mixlake train` and `mixlake serve` on an s3:// lake, from the CLI.

    `train --lake s3://…` writes its run, exposures, pin and per-row loss into the bucket;
    `serve --lake s3://…` (a real server) shows that run; no key is written anywhere.
    """
    from training import get_run
    from training.runs import exposures

    lake, model = _toy_lake(s3_lake, tmp_path)
    runs = tmp_path / "runs"
    sets = {"base_model": model, "mix": "toy", "data_file": "null", "max_steps": 2}
    config = Path(__file__).resolve().parents[2] / "training" / "configs" / "tiny-ddp.yaml"
    command = [sys.executable, "-m", "mixlake", "train", str(config), "--lake", s3_lake]
    command += [x for k, v in {**sets, "output_dir": runs}.items() for x in ("--set", f"{k}={v}")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MIXLAKE_LAKE", None)
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-1500:]
    (run_dir,) = runs.iterdir()
    lake = Lake(s3_lake)
    run = get_run(lake, run_dir.name)
    assert run.status == "finished" and run.metrics["steps"] == 2
    seen = exposures(lake, run.run_id).to_pylist()
    assert [(r["step"], r["rank"]) for r in seen] == [(1, 0), (1, 0), (2, 0), (2, 0)]
    column = f"train_loss_{run.run_id}"
    losses = lake.records().to_table(columns=["id", column]).to_pylist()
    assert {r["id"] for r in losses if r[column] is not None} == {r["record_id"] for r in seen}
    assert lake.tags(include_pins=True)[f"pin-run-{run.run_id}"] == run.records_version
    keys = list(bucket_objects(s3_lake))
    assert any("/exposures" in k for k in keys) and any("/runs" in k for k in keys)
    assert leaked_keys(s3_lake, runs, texts=(done.stdout, done.stderr)) == []
    canary = run_dir / "canary.txt"  # the scan does find a key where there is one
    canary.write_text(f"secret={SECRET}")
    assert leaked_keys(s3_lake, runs) == [str(canary)]
    canary.unlink()

    port = free_port()
    serve = [sys.executable, "-m", "mixlake", "serve", "--lake", s3_lake, "--port", str(port)]
    server = subprocess.Popen(serve, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        listed = _wait_for(f"{url}/api/runs", server)["runs"]
        assert [r["run_id"] for r in listed] == [run.run_id]
        detail = _get(f"{url}/api/runs/{run.run_id}")
        assert [h["step"] for h in detail["history"] if "loss" in h] == [1, 2]
        records = _get(f"{url}/api/records?limit=3")
        assert records["total"] == 8 and len(records["rows"]) == 3
        assert column in records["columns"]
    finally:
        server.terminate()
        out = server.communicate(timeout=30)[0].decode()
    assert leaked_keys(s3_lake, texts=(out,)) == []


def _wait_for(url: str, server: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + 60
    while True:
        try:
            return _get(url)
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                out = server.communicate()[0].decode()
                raise AssertionError(f"mixlake serve did not answer {url}: {out[-1500:]}") from None
            time.sleep(0.3)
