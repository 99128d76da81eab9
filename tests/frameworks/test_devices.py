"""Where the torch and ONNX adapters compute: the GPU where their build can use one, else the CPU, said in
the server's load record and its /metadata (on these machines, which have no GPU: the CPU; on a machine
with one and a CUDA build of torch or onnxruntime-gpu: cuda:0)."""

from __future__ import annotations

import pytest

import vci
from vci.deploy import undeploy
from vci.frameworks.onnx import providers

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")
from sklearn.linear_model import LinearRegression  # noqa: E402


def served_device(run) -> tuple[str | None, list]:
    """The device /metadata reports for ``run`` served locally, and its answer to one row."""
    try:
        run.deploy(wait=True)
        served = run.get_deployed_model()
        return served.metadata().get("device"), served.predict([[1.0, 2.0, 3.0]])
    finally:
        undeploy(run.settings, "staging")


def test_torch_reports_the_device_it_runs_on(store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 1)).eval()
    run = vci.init("devices", store=store)
    run.log_model(net)
    device, answer = served_device(run)
    assert device == ("cuda:0" if torch.cuda.is_available() else "cpu")
    with torch.no_grad():
        assert answer[0] == pytest.approx(net(torch.tensor([[1.0, 2.0, 3.0]]))[0].tolist(), abs=1e-6)


def test_onnx_reports_the_provider_it_runs_on(store, tmp_path, monkeypatch):
    from skl2onnx.common.data_types import FloatTensorType

    monkeypatch.chdir(tmp_path)
    reg = LinearRegression().fit([[0.0, 1, 2], [1, 0, 2], [2, 2, 0], [3, 1, 1]], [1.0, 2, 3, 4])
    proto = skl2onnx.convert_sklearn(reg, initial_types=[("x", FloatTensorType([None, 3]))])
    run = vci.init("devices", store=store)
    run.log_model(proto)
    device, answer = served_device(run)
    gpu = "CUDAExecutionProvider" in ort.get_available_providers()
    assert device == ("cuda:0" if gpu else "cpu")
    assert answer[0] == pytest.approx([float(reg.predict([[1.0, 2.0, 3.0]])[0])], abs=1e-4)


def test_onnx_asks_for_a_gpu_provider_first_where_its_build_has_one():
    assert providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    gpu_build = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert providers(gpu_build) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert providers(["ROCMExecutionProvider", "CPUExecutionProvider"])[0] == "ROCMExecutionProvider"
