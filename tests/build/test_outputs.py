"""The outputs of a build that need no registry: the push progress lines and the refs file."""

from vci.build.outputs import push_progress, write_refs_file

DIGEST = "sha256:" + "ab" * 32


def test_push_progress_follows_the_one_progress_rule(monkeypatch, capsys):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("VCI_PROGRESS", "0")
    assert push_progress() is None
    monkeypatch.delenv("VCI_PROGRESS")
    assert push_progress() is None  # stderr is not a terminal here
    monkeypatch.setenv("VCI_PROGRESS", "1")
    report = push_progress()
    report("uploaded", DIGEST, 3 << 20)
    report("skipped", DIGEST, 1536)
    assert capsys.readouterr().err.splitlines() == [
        "  uploaded  sha256:abababababab    3.0 MiB",
        "  skipped   sha256:abababababab    1.5 KiB",
    ]


def test_the_refs_file_holds_the_reference_on_one_line(tmp_path):
    path = tmp_path / "refs"
    path.write_text("an older reference\n")
    write_refs_file(path, f"registry.example/ml/iris@{DIGEST}")
    assert path.read_text() == f"registry.example/ml/iris@{DIGEST}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["refs"]
