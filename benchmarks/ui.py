"""`vci ui` on a big store: the board and timeline pages with 10,000 releases and 1,000 runs.

Both stores are measured here, now: the local store and S3 on loopback (moto in its own process). Each
has a real run deployed to staging and production (live servers: the board asks their health), then
10,000 release records in production's ledger and 1,000 runs. Pages are requested through Flask's test
client (the app's own work, no socket): the first request (cold: nothing cached in memory, documents
read from the store), the median of 20 after it (warm), and one once the listing is older than its
time to live (it is then served from memory while a background thread lists again).
Target: the board and a timeline page under 200 ms.

    python benchmarks/ui.py [RELEASES] [RUNS]       (default 10000 1000; filling S3 takes a minute)
"""

import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from s3server import dummy_aws_env, start_moto_process, stop_process  # noqa: E402
from tests.release.conftest import make_run, release_settings  # noqa: E402
from vci.deploy import deploy, undeploy  # noqa: E402
from vci.ledger import Ledger, make_record  # noqa: E402
from vci.release.promote import promote  # noqa: E402
from vci.runs import run_key  # noqa: E402
from vci.ui.app import create_app  # noqa: E402
from vci.ui.guard import Guard  # noqa: E402

WARM = 20
PAGES = {"board": "/", "timeline p1": "/env/production", "timeline p100": "/env/production?page=100", "runs": "/runs"}


def fill(settings, template: dict, releases: int, runs: int) -> None:
    """``releases`` records in production's ledger (older than the real ones) and ``runs`` run manifests."""
    store = Ledger.for_settings(settings).store

    def release(i: int) -> None:
        rid = f"r2025{i // 86400 % 365:04d}-{i % 86400:06d}-{i % 65536:04x}"
        record = make_record(release_id=rid, environment="production", action="promote", outcome="succeeded",
                             digest=template["digest"], run_id=template["id"], approver="carol")  # fmt: skip
        store.put_json_new(Ledger.key("production", rid), {**record.to_json(), "timestamp": 1.7e9 + i})

    def run(i: int) -> None:
        run_id = f"2025{i // 86400 % 365:04d}-{i % 86400:06d}-{i:08x}"
        store.put_json_new(run_key(run_id), {**template["manifest"], "id": run_id})

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(release, range(releases)))
        list(pool.map(run, range(runs)))


def measure(name: str, settings) -> None:
    warmed = create_app(settings, Guard(token="x" * 20, actions=False))
    start = time.perf_counter()
    warmed.config["catalog"].warm().join()
    listed = time.perf_counter() - start
    start = time.perf_counter()
    warmed.test_client().get("/env/production")
    after = time.perf_counter() - start
    print(f"{name}: listing every ledger at start (vci ui does, in the background) {listed * 1000:.0f} ms; "
          f"then timeline p1 cold {after * 1000:.0f} ms")  # fmt: skip
    client = create_app(settings, Guard(token="x" * 20, actions=False)).test_client()
    for page, path in PAGES.items():
        start = time.perf_counter()
        first = client.get(path)
        cold = time.perf_counter() - start
        assert first.status_code == 200, first.get_data(as_text=True)[:500]
        times = []
        for _ in range(WARM):
            start = time.perf_counter()
            client.get(path)
            times.append(time.perf_counter() - start)
        time.sleep(client.application.config["catalog"].listing_ttl + 0.1)
        start = time.perf_counter()
        client.get(path)  # the listing is stale now: served from memory while it is listed again
        stale = time.perf_counter() - start
        print(
            f"{name}: {page:14s} cold {cold * 1000:6.0f} ms, warm median {statistics.median(times) * 1000:5.0f} ms, "
            f"listing stale {stale * 1000:4.0f} ms"
        )


def scene(root: Path, store: str, releases: int, runs: int):
    root.mkdir(parents=True, exist_ok=True)
    settings = release_settings(root, store=store)
    v1 = make_run(settings, root, 2)
    deploy(settings, v1.id, "staging")
    template = {"id": v1.id, "digest": v1.version, "manifest": v1.manifest}
    fill(settings, template, releases, runs)
    promote(settings, "staging", "production")
    return settings


def main() -> None:
    releases = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ.update(VCI_CACHE_DIR=str(root / "cache"), VCI_USER="bench")
        os.chdir(root)
        print(f"{releases} releases in production's ledger, {runs} runs; warm = median of {WARM}")
        local = scene(root / "local", str(root / "local" / "store"), releases, runs)
        try:
            measure("local store", local)
        finally:
            for env in ("staging", "production"):
                undeploy(local, env)
        proc, endpoint = start_moto_process()
        try:
            os.environ.update(dummy_aws_env(), AWS_ENDPOINT_URL=endpoint)
            import boto3

            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
            s3 = scene(root / "s3", f"s3://{bucket}/vci", releases, runs)
            try:
                measure("S3 (moto)  ", s3)
            finally:
                for env in ("staging", "production"):
                    undeploy(s3, env)
        finally:
            stop_process(proc)


if __name__ == "__main__":
    main()
