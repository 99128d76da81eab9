"""Listing as the store grows: the newest 20 of N runs and of N releases, against reading them all.

Both measured here, now, on the local store and on an S3 API server on loopback (moto), cold (an
empty cache) and warm (the page's documents cached, as `vci runs list` keeps them).
Target: the newest 20 of 10,000 in under 0.1x the time of reading all 10,000, on both stores.

    python benchmarks/listing.py [N]          (default 10000; writing them takes a while on S3)
"""

import os
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from s3server import dummy_aws_env, start_moto  # noqa: E402
from vci.catalog import newest_documents  # noqa: E402
from vci.ledger import Ledger, make_record  # noqa: E402
from vci.store.local import LocalStore  # noqa: E402


def fill(store, n: int) -> None:
    def one(i: int) -> None:
        run_id = f"2026{i // 86400:04d}-{i % 86400:06d}-abcd"
        doc = {"id": run_id, "project": "bench", "created": "2026-12-01T00:00:00Z", "artifacts": {}, "pad": "x" * 600}
        store.put_json_new(f"runs/{run_id}.json", doc)
        rid = f"r2026{i // 86400:04d}-{i % 86400:06d}-abcd"
        record = make_record(release_id=rid, environment="prod", action="deploy", outcome="succeeded", digest=None)
        store.put_json_new(Ledger(store).key("prod", rid), record.to_json())

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(n)))


def seconds(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def measure(name: str, store, n: int) -> None:
    ledger = Ledger(store)
    full_runs = seconds(lambda: [store.get_json(k) for k in store.list_keys("runs/") if k.endswith(".json")])
    full_ledger = seconds(lambda: ledger.records("prod"))
    cold = seconds(lambda: newest_documents(store, "runs/", 20, cache=True))
    warm = seconds(lambda: newest_documents(store, "runs/", 20, cache=True))
    page_ledger = seconds(lambda: ledger.newest("prod", 20, cached=True))
    print(
        f"{name}: {n} runs, all read one by one {full_runs:.2f} s; newest 20 cold {cold:.3f} s "
        f"({cold / full_runs:.3f}x), warm {warm:.3f} s ({warm / full_runs:.3f}x)"
    )
    print(
        f"{name}: {n} releases, all read {full_ledger:.2f} s; newest 20 {page_ledger:.3f} s "
        f"({page_ledger / full_ledger:.3f}x)  target < 0.1x"
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["VCI_CACHE_DIR"] = str(Path(tmp) / "cache")
        local = LocalStore(Path(tmp) / "store")
        fill(local, n)
        measure("local store", local, n)
        server, endpoint = start_moto()
        try:
            os.environ.update(dummy_aws_env())
            import boto3

            from vci.store.s3 import S3Store

            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
            s3 = S3Store(bucket, "vci", endpoint_url=endpoint)
            fill(s3, n)
            measure("S3 (moto, loopback)", s3, n)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
