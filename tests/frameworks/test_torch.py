"""PyTorch: TorchScript (scripted, traced) and a user nn.Module as class + state_dict, served as the
original."""

import json
import subprocess
import sys

import pytest

from tests.frameworks.conftest import assert_close, log_and_load, pinned

torch = pytest.importorskip("torch")
from tests.frameworks.models import TinyNet  # noqa: E402


def trained() -> TinyNet:
    torch.manual_seed(0)
    net = TinyNet(3, 2)
    X, y = torch.randn(32, 3), torch.randn(32, 2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(X), y).backward()
        opt.step()
    with torch.no_grad():
        net.shift.fill_(0.25)  # a non-persistent buffer: not in the state_dict, still restored
    return net.eval()


ROWS = [[0.1, -0.2, 0.3], [1.0, 2.0, -1.0]]


def test_module_logged_as_class_and_state_dict(store):
    net = trained()
    model, manifest = log_and_load(net, store)
    assert manifest["artifacts"]["model"]["kind"] == "directory"
    assert pinned(manifest, "torch") == torch.__version__
    with torch.no_grad():
        expected = net(torch.tensor(ROWS)).tolist()
    assert_close(model.predict(ROWS), expected)
    assert_close(model.predict(ROWS[1]), expected[1])
    batch = model.batch_predict([ROWS[:1], ROWS])
    assert len(batch) == 2
    assert_close(batch[0], expected[:1])
    assert_close(batch[1], expected)


@pytest.mark.parametrize("export", ["script", "trace"])
def test_torchscript_round_trip(store, export):
    torch.manual_seed(1)  # torch's own classes: a by-value load of TinyNet in this process rewrites its code
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).eval()
    compiled = torch.jit.script(net) if export == "script" else torch.jit.trace(net, torch.randn(1, 3))
    model, manifest = log_and_load(compiled, store)
    assert manifest["artifacts"]["model"]["filename"] == "model.pt"
    with torch.no_grad():
        assert_close(model.predict(ROWS), compiled(torch.tensor(ROWS)).tolist())


def test_module_loads_where_its_source_file_does_not_exist(store, tmp_path):
    """The class travels by value: a fresh process without tests/ on its path still builds it."""
    from vci.runs import init

    run = init("frameworks", store=store)
    run.log_model(trained())
    run.commit()
    code = (
        "import json, sys, vci; m = vci.get_run(sys.argv[1], store=sys.argv[2]).load_model();"
        f"print(json.dumps([type(m.net).__name__, m.predict({ROWS!r}), sorted(n for n in sys.modules"
        " if n.startswith('tests'))]))"
    )
    env = {"VCI_CACHE_DIR": str(tmp_path / "c2"), "PATH": "/usr/bin:/bin"}  # cwd tmp_path: no tests/ here
    out = subprocess.run(
        [sys.executable, "-c", code, run.id, store], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    name, predicted, imported = json.loads(out.stdout)
    assert name == "TinyNet" and imported == []
    net = trained()
    with torch.no_grad():
        assert_close(predicted, net(torch.tensor(ROWS)).tolist())
