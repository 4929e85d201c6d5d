"""S3 benchmark: ingest and materialize on an `s3://` lake against the same on local disk.

The S3 API is `moto_server` on 127.0.0.1 (the one the tests use): an in-process Python
server, far slower per request than S3 or MinIO, so the ratio bounds what object storage
costs mixlake's request pattern rather than predicting AWS. Same generated rows
(`bench.bench_lake.generate`; 100k by default, `MIXLAKE_BENCH_ROWS` overrides) both ways.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.bench_lake import generate

ROWS = 100_000
SPEC = """\
name: s3bench
records: latest
seed: 1
total_rows: 20000
components:
  - name: all
    sql: kind = 'chat'
    weight: 1.0
splits: {train: 0.9, val: 0.05, test: 0.05}
"""


def _server() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


def _timed(lake_uri: str, data: Path, spec: Path) -> tuple[float, float]:
    from curation import Lake
    from queries import load_spec, materialize_mix

    lake = Lake.create(lake_uri)
    t = time.perf_counter()
    lake.ingest([data], source="bench")
    ingest_s = time.perf_counter() - t
    t = time.perf_counter()
    materialize_mix(lake, load_spec(spec))
    return ingest_s, time.perf_counter() - t


def run(rows: int | None = None) -> str:
    """Run the S3 benchmark and return its Markdown section."""
    import boto3

    n = rows or int(os.environ.get("MIXLAKE_BENCH_ROWS", ROWS))
    work = Path(tempfile.mkdtemp(prefix="mixlake-bench-s3-"))
    proc, endpoint = _server()
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ALLOW_HTTP")}
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "bench"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "bench"),
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ALLOW_HTTP": "true",
        }
    )
    try:
        data = generate(work / "data.jsonl", n)
        spec = work / "s3bench.yaml"
        spec.write_text(SPEC.replace("total_rows: 20000", f"total_rows: {min(20000, n // 5)}"))
        bucket = "bench-" + uuid.uuid4().hex[:8]
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        warm = generate(work / "warm.jsonl", 2000, seed=3)
        from curation import Lake

        Lake.create(str(work / "warm-lake")).ingest([warm], source="warm")  # first-use costs
        local_ingest, local_mix = _timed(str(work / "lake"), data, spec)
        s3_ingest, s3_mix = _timed(f"s3://{bucket}/lake", data, spec)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(work, ignore_errors=True)
    return "\n".join(
        [
            "## S3 lake: ingest and materialize against local disk",
            "",
            f"{n:,} generated rows (as in the lake section); the mix takes {min(20000, n // 5):,}. "
            "The S3 API is `moto_server` on 127.0.0.1 (a Python server: it bounds the cost of "
            "mixlake's request pattern, it does not predict AWS or MinIO). Each S3 write also "
            "takes and releases the lake's lease (three conditional requests). A small ingest "
            "runs first, so neither side pays the first-use costs (imports, thread pools).",
            "",
            "| operation | local disk (s) | s3:// on moto (s) | ratio |",
            "|---|---:|---:|---:|",
            f"| ingest {n:,} rows | {local_ingest:.2f} | {s3_ingest:.2f} "
            f"| {s3_ingest / local_ingest:.2f} |",
            f"| materialize a mix | {local_mix:.2f} | {s3_mix:.2f} | {s3_mix / local_mix:.2f} |",
        ]
    )


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else None))
