"""A write stopped part-way: SIGTERM leaves nothing behind; what SIGKILL leaves, `vci gc --uploads` removes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vci.errors import UsageError
from vci.store.gc import incomplete_uploads

MIB = 1 << 20
ROOT = Path(__file__).resolve().parents[2]

# a real process storing a blob through the library; the progress callback slows it so that a signal
# lands mid-write (SIGTERM's handling is the library's own, nothing here catches it)
DRIVER = """
import sys, time
from vci.errors import Aborted
from vci.store import open_store
from vci.store.s3_multipart import MultipartPlan

store = open_store(sys.argv[1])
if hasattr(store, "plan"):
    store.plan = MultipartPlan(part_size=5 << 20, concurrency=2)
try:
    if sys.argv[3] == "file":
        store.put_blob(sys.argv[2], progress=lambda delta: time.sleep(0.3 * delta / (5 << 20)))
    else:
        store.put_bytes(open(sys.argv[2], "rb").read())
except Aborted as exc:
    print(exc, file=sys.stderr)
    sys.exit(exc.exit_code)
"""


def store_url(case):
    return f"s3://{case.bucket}/{case.prefix}" if case.kind == "s3" else str(case.root)


def child_env(case, moto_endpoint=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VCI_STORE": store_url(case)}
    if case.kind == "s3":
        env["VCI_S3_ENDPOINT_URL"] = moto_endpoint
    env.pop("VCI_DEBUG", None)
    return env


def in_progress(case) -> list:
    if case.kind == "s3":
        return case.multipart_uploads()
    tmp = case.root / "tmp"
    return list(tmp.iterdir()) if tmp.is_dir() else []


def start_and_catch_mid_write(case, cmd, env, timeout=30.0):
    """Start ``cmd`` and return it once its write has begun (an open upload, a temporary file)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while not in_progress(case):
        assert proc.poll() is None, f"finished before it could be stopped: {proc.communicate()}"
        assert time.monotonic() < deadline, "no write in progress seen"
        time.sleep(0.01)
    return proc


@pytest.fixture()
def endpoint(case, request):
    return request.getfixturevalue("moto_endpoint") if case.kind == "s3" else None


def big_file(tmp_path, size=40 * MIB):
    path = tmp_path / "weights.bin"
    path.write_bytes(os.urandom(size))
    return path


def test_sigterm_mid_write_leaves_nothing(case, tmp_path, endpoint):
    assert_sigterm_leaves_nothing(case, endpoint, big_file(tmp_path), "file")


def test_sigterm_mid_upload_of_bytes_aborts_it(s3_bucket, moto_endpoint, tmp_path):
    """Large bytes (a pickled object) go through boto3's transfer manager: it aborts on the signal too."""
    from .conftest import S3Case

    assert_sigterm_leaves_nothing(S3Case(*s3_bucket), moto_endpoint, big_file(tmp_path, 96 * MIB), "bytes")


def assert_sigterm_leaves_nothing(case, endpoint, src, what):
    cmd = [sys.executable, "-c", DRIVER, store_url(case), str(src), what]
    proc = start_and_catch_mid_write(case, cmd, child_env(case, endpoint))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM" in err
    assert in_progress(case) == [] and partial_blobs(case) == []


def partial_blobs(case) -> list[str]:
    """Keys left that are not whole blobs. A signal can land while the upload's last request is already
    on the wire: the blob then completes, whole and under its own digest (unreferenced, so `vci gc`
    removes it), which is not partial; anything else left is."""
    left = []
    for key in case.raw_keys():
        digest = "sha256:" + key.removeprefix("blobs/sha256/")
        try:
            whole = key.startswith("blobs/sha256/") and case.store.read_blob(digest) is not None
        except Exception:
            whole = False
        if not whole:
            left.append(key)
    return left


MODEL = """
class Model:
    def __init__(self, artifacts):
        pass

    def predict(self, data):
        return data
"""


def test_sigterm_during_vci_log_exits_143_and_leaves_nothing(case, tmp_path, endpoint):
    src = big_file(tmp_path, 160 * MIB if case.kind == "s3" else 200 * MIB)
    (tmp_path / "model.py").write_text(
        "class Model:\n    def __init__(self, artifacts): pass\n    def predict(self, data): return data\n"
    )
    model = f"{tmp_path / 'model.py'}:Model"
    cmd = [sys.executable, "-m", "vci", "log", "--project", "p", "--model", model, "--artifact", f"w={src}"]
    proc = start_and_catch_mid_write(case, cmd, child_env(case, endpoint))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    assert in_progress(case) == [] and case.raw_keys() == []


def vci_gc(case, endpoint, *args):
    out = subprocess.run(
        [sys.executable, "-m", "vci", "gc", *args, "-o", "json"],
        env=child_env(case, endpoint),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_what_a_killed_writer_left_is_listed_then_removed_by_vci_gc(case, tmp_path, endpoint):
    src = big_file(tmp_path)
    cmd = [sys.executable, "-c", DRIVER, store_url(case), str(src), "file"]
    proc = start_and_catch_mid_write(case, cmd, child_env(case, endpoint))
    time.sleep(0.5)  # some parts (or bytes) written
    proc.kill()
    proc.communicate(timeout=30)
    assert len(in_progress(case)) == 1  # what SIGKILL leaves
    if case.kind == "local":  # (moto reports every upload as initiated in 2010)
        assert vci_gc(case, endpoint, "--uploads")["uploads"] == []  # younger than a day: maybe still written
    listed = vci_gc(case, endpoint, "--uploads", "--older-than", "0")
    assert listed["dry_run"] is True and len(listed["uploads"]) == 1
    upload = listed["uploads"][0]
    assert upload["size"] > 0
    assert upload["key"].startswith("blobs/sha256/" if case.kind == "s3" else "tmp/.")
    assert len(in_progress(case)) == 1  # a dry run removes nothing
    removed = vci_gc(case, endpoint, "--uploads", "--older-than", "0", "--yes")
    assert removed["dry_run"] is False and removed["uploads"] == listed["uploads"]
    assert in_progress(case) == [] and case.raw_keys() == []


def test_only_vci_blob_uploads_and_old_tmp_files_are_collected(case):
    if case.kind == "s3":
        for key in ("team/vci/blobs/sha256/" + "a" * 64, "team/vci/runs/x.json", "team/other/blobs/sha256/b"):
            case.client.create_multipart_upload(Bucket=case.bucket, Key=key)
        found = incomplete_uploads(case.store, 0)
        assert [u.key for u in found] == ["blobs/sha256/" + "a" * 64]
        incomplete_uploads(case.store, 0, remove=True)
        assert sorted(u["Key"] for u in case.multipart_uploads()) == [
            "team/other/blobs/sha256/b",
            "team/vci/runs/x.json",
        ]
    else:
        tmp = case.root / "tmp"
        tmp.mkdir(parents=True)
        (tmp / ".old.1.tmp").write_bytes(b"x" * 10)
        (tmp / ".dir.2.tmp").mkdir()
        (tmp / ".dir.2.tmp" / "part").write_bytes(b"y" * 5)
        (tmp / ".new.3.tmp").write_bytes(b"z")
        two_hours_ago = time.time() - 7200
        os.utime(tmp / ".dir.2.tmp", (two_hours_ago,) * 2)
        os.utime(tmp / ".old.1.tmp", (two_hours_ago + 1,) * 2)
        found = incomplete_uploads(case.store, 3600)
        assert [(u.key, u.size) for u in found] == [("tmp/.dir.2.tmp", 5), ("tmp/.old.1.tmp", 10)]
        incomplete_uploads(case.store, 3600, remove=True)
        assert sorted(p.name for p in tmp.iterdir()) == [".new.3.tmp"]
    with pytest.raises(UsageError, match="negative"):
        incomplete_uploads(case.store, -1)


def test_sigterm_mid_fetch_leaves_no_partial_file_in_the_cache(s3_bucket, moto_endpoint, tmp_path):
    from vci.runs import Run

    from .conftest import S3Case

    case = S3Case(*s3_bucket)
    run = Run(case.store, project="p")
    run.log_artifact("w", big_file(tmp_path, 160 * MIB))
    run.commit()
    cache = tmp_path / "cache"
    env = {**child_env(case, moto_endpoint), "VCI_CACHE_DIR": str(cache)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vci", "serve", run.id, "--port", "0"], env=env, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    blob = run.manifest["artifacts"]["w"]["digest"].split(":")[1]
    while not list(cache.glob(f"models/*/blobs/sha256/.{blob}.*.tmp")):  # its download has begun
        assert proc.poll() is None and time.monotonic() < deadline, "no download in progress seen"
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "fetching run" in err and "stopped by SIGTERM" in err
    assert [p for p in cache.rglob("*") if p.is_file()] == []
