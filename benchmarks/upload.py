"""S3 upload: vci's put_blob (hashing included) against boto3's plain upload_file, on the same moto server.

Measured in the same run, interleaved, each round on a freshly reset server:
  baseline = boto3 ``client.upload_file(path, bucket, key)`` with its default TransferConfig
  vci      = ``S3Store.put_blob(path)`` of a blob not yet stored: a sha256 pass over the file (the digest
             is needed first to skip unchanged files), then a parallel multipart upload to
             ``blobs/sha256/<hex>`` of parts re-read and hashed again, verified before it completes
  re-log   = ``put_blob(path)`` again: bytes sent must be 0
  ceiling  = upload_file / (upload_file + one sha256 pass over the file, timed here too): the best
             ratio any upload that must hash before sending can reach when its upload phase is as fast
             as upload_file's (on moto both are bound by the server's CPU)
Target: vci throughput >= 1.0x upload_file's (ratio = baseline time / vci time; medians).
The server runs in its own process by default (like a remote S3, no shared GIL); ``--threaded`` puts it
in this process as the tests do. ``--sweep`` also times other part sizes and concurrencies.
Usage: python benchmarks/upload.py [--mb 200] [--rounds 3] [--threaded] [--sweep]
"""

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

MIB = 1 << 20
BUCKET = "vci-bench"


def write_random(path: Path, mb: int) -> None:
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(os.urandom(MIB))


def fresh_bucket(endpoint: str):
    import boto3

    from s3server import reset_moto

    reset_moto(endpoint)
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET)
    return client


def time_upload_file(endpoint: str, path: Path) -> float:
    client = fresh_bucket(endpoint)
    start = time.perf_counter()
    client.upload_file(str(path), BUCKET, "baseline/object")
    return time.perf_counter() - start


def time_put_blob(endpoint: str, path: Path, plan, digest=None) -> tuple[float, object]:
    from vci.store.s3 import S3Store

    fresh_bucket(endpoint)
    store = S3Store(BUCKET, "bench", endpoint_url=endpoint, plan=plan)
    _ = store.client  # created before the clock starts, as upload_file's client is
    start = time.perf_counter()
    desc = store.put_blob(path, digest=digest)
    elapsed = time.perf_counter() - start
    assert desc.sent == desc.size, desc
    return elapsed, store


def compare(endpoint: str, path: Path, plan, rounds: int, digest=None) -> tuple[float, float, object]:
    """Median seconds of upload_file and of put_blob, alternating which goes first each round."""
    base, mine, store = [], [], None
    for i in range(rounds):
        if i % 2:
            seconds, store = time_put_blob(endpoint, path, plan, digest)
            mine.append(seconds)
            base.append(time_upload_file(endpoint, path))
        else:
            base.append(time_upload_file(endpoint, path))
            seconds, store = time_put_blob(endpoint, path, plan, digest)
            mine.append(seconds)
    return statistics.median(base), statistics.median(mine), store


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def report(label: str, mb: int, base: float, mine: float) -> None:
    print(
        f"{label:<34} upload_file {base:6.2f} s ({mb / base:6.1f} MiB/s)   vci put_blob {mine:6.2f} s "
        f"({mb / mine:6.1f} MiB/s)   ratio {base / mine:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threaded", action="store_true", help="moto in this process (as in the tests)")
    parser.add_argument("--sweep", action="store_true", help="also try other part sizes / concurrencies")
    args = parser.parse_args()

    from s3server import dummy_aws_env, start_moto, start_moto_process, stop_process
    from vci.digests import sha256_file

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the server is stopped too
    from vci.store.s3_multipart import MultipartPlan

    os.environ.update(dummy_aws_env())
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "VCI_S3_ENDPOINT_URL"):
        os.environ.pop(name, None)
    server, endpoint = start_moto() if args.threaded else start_moto_process()
    try:
        with tempfile.TemporaryDirectory(prefix="vci-bench-") as tmp:
            path = Path(tmp) / "weights.bin"
            write_random(path, args.mb)
            where = "in this process" if args.threaded else "in its own process"
            print(f"{args.mb} MiB of random bytes, moto server {where}, median of {args.rounds} rounds")
            plans = [MultipartPlan()]
            if args.sweep:
                plans += [MultipartPlan(p * MIB, c) for p, c in [(8, 4), (16, 8)]]
            hashing = statistics.median(timed(sha256_file, path) for _ in range(args.rounds))
            for plan in plans:
                base, mine, store = compare(endpoint, path, plan, args.rounds)
                label = f"parts {plan.part_size >> 20} MiB x{plan.concurrency}"
                report(label + (" (default)" if plan == plans[0] else ""), args.mb, base, mine)
                if plan == plans[0]:
                    print(
                        f"{'':<34} sha256 pass alone {hashing:.2f} s: ceiling for hash-first "
                        f"{base / (base + hashing):.2f}x"
                    )
            if args.sweep:  # the upload alone, without the sha256 pass that must come first otherwise
                digest = sha256_file(path)[0]
                base, mine, _ = compare(endpoint, path, plans[0], args.rounds, digest)
                report("default, digest given (no hash pass)", args.mb, base, mine)
            start = time.perf_counter()
            again = store.put_blob(path)
            print(
                f"re-log unchanged {args.mb} MiB: {again.sent} bytes sent in {time.perf_counter() - start:.2f} s "
                f"(target 0 bytes)"
            )
    finally:
        server.stop() if args.threaded else stop_process(server)


if __name__ == "__main__":
    main()
