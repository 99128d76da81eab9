"""What only the local store has: its tmp/ directory of writes in progress stays out of sight."""

import pytest

from vci.errors import StoreError
from vci.store import open_store
from vci.store.local import LocalStore


def test_writes_in_progress_are_not_keys(tmp_path):
    store = LocalStore(tmp_path)
    store.put_json("runs/a.json", {"id": "a"})
    (tmp_path / "tmp").mkdir(exist_ok=True)
    (tmp_path / "tmp" / "blob-inflight").write_bytes(b"half a blob")
    assert store.list_keys("") == ["runs/a.json"]


def test_a_refused_key_leaves_no_temporary_file(tmp_path):
    store = LocalStore(tmp_path)
    with pytest.raises(StoreError, match="escapes"):
        store.put_json_new("../outside.json", {})
    assert not (tmp_path.parent / "outside.json").exists()
    assert list((tmp_path / "tmp").glob("*")) == []


@pytest.mark.parametrize("url", ["DIR", "file://DIR"])
def test_open_store_local(tmp_path, url):
    store = open_store(url.replace("DIR", str(tmp_path / "s")))
    assert isinstance(store, LocalStore) and store.root == tmp_path / "s"
