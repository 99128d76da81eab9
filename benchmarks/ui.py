"""`vci ui` on a big store: the board and timeline pages with 10,000 releases and 1,000 runs.

Both stores are measured here, now: the local store and S3 on loopback (moto in its own process). Each
has a real run deployed to staging and production (live servers: the board asks their health), then
10,000 release records in production's ledger and 1,000 runs. Pages are requested through Flask's test
client (the app's own work, no socket): the first request of a new app with the on-disk document cache
emptied (cold: every record read from the store), the first request of another new app (its records in
the on-disk cache, as after a restart), the median of 20 after it (warm), and one once the listing is
older than its time to live (served from memory while a background thread lists again). Page 100 is
asked as its "older" link does (``?before=`` the second page 99 ended at).
Target: the board and a timeline page under 200 ms.

    python benchmarks/ui.py [RELEASES] [RUNS]       (default 10000 1000; filling S3 takes a minute)
"""

import os
import shutil
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


def fake_second(i: int) -> str:
    """The second of the ``i``-th release ``fill`` writes (they are older than the real ones)."""
    return f"r2025{i // 86400 % 365:04d}-{i % 86400:06d}"


def pages(releases: int) -> dict[str, str]:
    """Page 100 starts after the real promotion and 99 * 50 - 1 of the fakes (newest first)."""
    deep = f"/env/production?before={fake_second(releases - 99 * 50 + 1)}&page=100"
    return {"board": "/", "timeline p1": "/env/production", "timeline p100": deep, "runs": "/runs"}


def fill(settings, template: dict, releases: int, runs: int) -> None:
    """``releases`` records in production's ledger (older than the real ones) and ``runs`` run manifests."""
    store = Ledger.for_settings(settings).store

    def release(i: int) -> None:
        rid = f"{fake_second(i)}-{i % 65536:04x}"
        record = make_record(release_id=rid, environment="production", action="promote", outcome="succeeded",
                             digest=template["digest"], run_id=template["id"], approver="carol")  # fmt: skip
        store.put_json_new(Ledger.key("production", rid), {**record.to_json(), "timestamp": 1.7e9 + i})

    def run(i: int) -> None:
        run_id = f"2025{i // 86400 % 365:04d}-{i % 86400:06d}-{i:08x}"
        store.put_json_new(run_key(run_id), {**template["manifest"], "id": run_id})

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(release, range(releases)))
        list(pool.map(run, range(runs)))


def measure(name: str, settings, releases: int) -> None:
    shutil.rmtree(Path(os.environ["VCI_CACHE_DIR"]) / "documents", ignore_errors=True)
    warmed = new_client(settings)
    start = time.perf_counter()
    warmed.application.config["catalog"].warm().join()
    listed = (time.perf_counter() - start) * 1000
    print(f"{name}: vci ui's warm() at start (first pages read) {listed:.0f} ms; "
          f"then timeline p1 {timed(warmed, '/env/production'):.0f} ms")  # fmt: skip
    for page, path in pages(releases).items():
        shutil.rmtree(Path(os.environ["VCI_CACHE_DIR"]) / "documents", ignore_errors=True)
        cold = timed(new_client(settings), path)
        client = new_client(settings)
        restarted = timed(client, path)  # a new app: nothing in memory, the records in the on-disk cache
        warm = statistics.median(timed(client, path) for _ in range(WARM))
        time.sleep(client.application.config["catalog"].listing_ttl + 0.1)
        stale = timed(client, path)  # the listing is stale now: served from memory while it is listed again
        print(
            f"{name}: {page:14s} cold {cold:6.0f} ms, new app {restarted:5.0f} ms, warm median {warm:5.0f} ms, "
            f"listing stale {stale:4.0f} ms"
        )


def new_client(settings):
    return create_app(settings, Guard(token="x" * 20, actions=False)).test_client()


def timed(client, path: str) -> float:
    """Milliseconds ``client`` took to get ``path`` (which must answer 200)."""
    start = time.perf_counter()
    answer = client.get(path)
    took = (time.perf_counter() - start) * 1000
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    assert path == "/" or "/runs" in path or answer.get_data(as_text=True).count('id="release-') >= 50
    return took


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
            measure("local store", local, releases)
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
                measure("S3 (moto)  ", s3, releases)
            finally:
                for env in ("staging", "production"):
                    undeploy(s3, env)
        finally:
            stop_process(proc)


if __name__ == "__main__":
    main()
