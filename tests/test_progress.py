"""The byte-transfer progress display: when it is on, what it draws, how often, and from many threads."""

import io
import threading

import pytest

from vci.progress import Progress, format_bytes, progress_enabled, render_line


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    monkeypatch.delenv("VCI_PROGRESS", raising=False)
    monkeypatch.delenv("CI", raising=False)


def draws(out: io.StringIO) -> list[str]:
    return [part for part in out.getvalue().split("\r") if part]


@pytest.mark.parametrize(
    "stream, env, expected",
    [
        (Terminal(), {}, True),
        (io.StringIO(), {}, False),
        (Terminal(), {"CI": "true"}, False),
        (io.StringIO(), {"VCI_PROGRESS": "1"}, True),
        (Terminal(), {"VCI_PROGRESS": "1", "CI": "true"}, True),
        (Terminal(), {"VCI_PROGRESS": "0"}, False),
    ],
)
def test_when_it_is_on(stream, env, expected):
    assert progress_enabled(stream, env) is expected


def test_env_is_read_by_default(monkeypatch):
    monkeypatch.setenv("VCI_PROGRESS", "1")
    assert Progress(10, "x", stream=io.StringIO()).enabled
    monkeypatch.setenv("VCI_PROGRESS", "0")
    assert not Progress(10, "x", stream=Terminal()).enabled
    assert Progress(10, "x", stream=io.StringIO(), enabled=True).enabled  # the caller's word wins


@pytest.mark.parametrize(
    "n, text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (200 << 20, "200.0 MiB"), (3 << 30, "3.0 GiB")]
)
def test_format_bytes(n, text):
    assert format_bytes(n) == text


def test_line_has_bar_percent_bytes_and_rate():
    line = render_line("uploading weights", 50 << 20, 200 << 20, elapsed=2.0)
    assert line.startswith("uploading weights [======>")
    assert " 25% " in line and "50.0 MiB/200.0 MiB" in line and line.endswith("25.0 MiB/s")
    done = render_line("x", 10, 10, elapsed=1.0)
    assert "[" + "=" * 24 + "]" in done and "100%" in done
    assert "100%" in render_line("x", 0, 0, elapsed=0.0)  # nothing to send is complete


def test_draws_are_throttled_to_the_interval():
    out, clock = io.StringIO(), FakeClock()
    bar = Progress(1000, "up", enabled=True, stream=out, clock=clock)
    for _ in range(50):  # 50 deltas within 50 ms: one draw
        bar(1)
        clock.now += 0.001
    assert len(draws(out)) == 1
    clock.now += 0.2
    bar(1)
    assert len(draws(out)) == 2
    bar(949)  # reaching the total always draws
    assert "100%" in draws(out)[-1] and len(draws(out)) == 3
    bar.close()
    assert out.getvalue().endswith("\n") and "1000 B/1000 B" in draws(out)[-1]


def test_shorter_line_wipes_the_longer_one():
    out, clock = io.StringIO(), FakeClock()
    bar = Progress(2 << 30, "up", enabled=True, stream=out, clock=clock)
    clock.now += 0.001
    bar(1 << 30)  # a high rate: long text
    clock.now += 1000
    bar(1)  # a low rate: shorter text, padded to the previous width
    first, second = draws(out)
    assert len(second) >= len(first)


def test_disabled_writes_nothing_but_counts():
    out = io.StringIO()
    with Progress(100, "up", enabled=False, stream=out) as bar:
        bar(60)
    assert out.getvalue() == "" and bar.done == 60


def test_nothing_moved_prints_nothing():
    out = io.StringIO()
    Progress(100, "up", enabled=True, stream=out).close()
    assert out.getvalue() == ""


def test_thread_safe_counting():
    out = io.StringIO()
    bar = Progress(8 * 2_000, "up", enabled=True, stream=out, interval=0.0)
    workers = [threading.Thread(target=lambda: [bar(1) for _ in range(2_000)]) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    bar.close()
    assert bar.done == 16_000
    assert all(d.startswith("up [") for d in draws(out))  # draws never interleave mid-line


def test_a_broken_stream_does_not_fail_the_transfer():
    out = io.StringIO()
    bar = Progress(10, "up", enabled=True, stream=out)
    out.close()
    bar(5)
    bar.close()
    assert bar.done == 5 and not bar.enabled


def test_store_upload_drives_it(tmp_path):
    from vci.store.local import LocalStore

    src = tmp_path / "w.bin"
    src.write_bytes(b"x" * (3 << 20))
    out = io.StringIO()
    with Progress(src.stat().st_size, "uploading w", enabled=True, stream=out, interval=0.0) as bar:
        LocalStore(tmp_path / "store").put_blob(src, progress=bar)
    assert "3.0 MiB/3.0 MiB" in draws(out)[-1] and bar.done == 3 << 20
