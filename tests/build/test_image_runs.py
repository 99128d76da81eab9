"""The packaged image really runs: Debian+python3 base, pulled with skopeo, unpacked with umoci, run with runc."""

import json
import sys
import urllib.error
import urllib.request

import pytest

import vci
from images import base_image_layout, index_base_layout, run_image, wait_http
from vci.build import Options
from vci.build.package import package

from .conftest import log_scaler
from .models import Scaler, YamlScaler


@pytest.fixture(scope="module")
def debian_base():
    return f"oci:{base_image_layout()}:base"


def wait_ready(url: str, box, timeout: float = 60) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, _ = wait_http(url + "/readyz", timeout=max(1, deadline - time.monotonic()))
        except Exception as exc:
            raise AssertionError(f"{exc}; container log: {box.logs()}") from exc
        if status == 200:
            return
        time.sleep(0.2)
    raise AssertionError("not ready: " + box.logs())


def post(url: str, body) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, json.loads(resp.read())


@pytest.mark.slow
def test_pushed_image_runs_with_runc_as_non_root(settings, tmp_path, registry, debian_base):
    run = log_scaler(settings, tmp_path, "factor: 3", cls=YamlScaler, requirements=["PyYAML"])
    result = package(settings, run.id, Options(base=debian_base, push=[f"{registry.host}/ml/runs"]))
    with run_image(result["image"]) as box:
        wait_ready(box.url, box)
        status, answer = post(box.url + "/predict", [1, 2])
        assert status == 200 and answer == {"scaled": [3, 6], "uid": 65532}
        with urllib.request.urlopen(box.url + "/metadata", timeout=10) as resp:
            meta = json.loads(resp.read())
        assert run.id in json.dumps(meta) and run.version in json.dumps(meta)


@pytest.mark.slow
def test_the_amd64_image_of_a_two_platform_index_runs_and_predicts(settings, tmp_path, registry, debian_base):
    """Pulled by the index's digest, as a node pulls it: skopeo picks this machine's platform (amd64)."""
    base = index_base_layout(tmp_path / "base", amd64=debian_base)
    run = log_scaler(settings, tmp_path, "factor: 4", cls=YamlScaler, requirements=["PyYAML"])
    options = Options(base=base, platform="linux/amd64,linux/arm64", push=[f"{registry.host}/ml/multi-run"])
    result = package(settings, run.id, options)
    assert result["manifest"]["mediaType"] == "application/vnd.oci.image.index.v1+json"
    with run_image(result["image"]) as box:
        wait_ready(box.url, box)
        assert post(box.url + "/predict", [1, 2]) == (200, {"scaled": [4, 8], "uid": 65532})


@pytest.mark.slow
def test_the_image_loads_its_bytecode_instead_of_compiling(settings, tmp_path, debian_base):
    """Read-only root, PYTHONDONTWRITEBYTECODE: what the layers do not carry compiled is compiled at every start."""
    run = log_scaler(settings, tmp_path, "factor: 2", cls=YamlScaler, requirements=["PyYAML"])
    package(settings, run.id, Options(base=debian_base, layout=str(tmp_path / "image")))
    with run_image(
        f"oci:{tmp_path / 'image'}:{run.id}", args=["python3", "-v", "-c", "import yaml, vci.modeldir"]
    ) as box:
        assert box.wait_stopped(60), box.logs()
        loaded = [line for line in box.logs().splitlines() if line.startswith("# code object from ")]
    for module in ("/opt/vci/site-packages/yaml/__init__", "/opt/vci/runtime/vci/modeldir"):
        folder, name = module.rsplit("/", 1)
        assert f"# code object from '{folder}/__pycache__/{name}.{sys.implementation.cache_tag}.pyc'" in loaded, loaded
    assert not [line for line in loaded if line.startswith("# code object from '/opt/vci/") and line.endswith(".py'")]


@pytest.mark.slow
def test_the_image_validates_requests_and_serves_its_docs_offline(settings, tmp_path, debian_base):
    """The runtime layer carries the Swagger UI files: /docs works in a container that reaches nothing else."""
    path = tmp_path / "factor.txt"
    path.write_text("2")
    run = vci.init("scaler", settings=settings)
    run.log_artifact("factor", path)
    run.log_model(Scaler, artifacts=["factor"])
    run.log_examples([[1, 2.5], [3]], [[2, 5.0], [6]])  # lists of numbers: the input schema
    run.commit()
    package(settings, run.id, Options(base=debian_base, layout=str(tmp_path / "image")))
    with run_image(f"oci:{tmp_path / 'image'}:{run.id}") as box:
        wait_ready(box.url, box)
        with pytest.raises(urllib.error.HTTPError) as refused:
            post(box.url + "/predict", [1, "2"])
        assert refused.value.code == 422
        assert json.loads(refused.value.read())["error"] == "$[1]: expected number, got string"
        with urllib.request.urlopen(box.url + "/openapi.json", timeout=10) as resp:
            doc = json.loads(resp.read())
        assert doc["components"]["schemas"]["Input"] == run.manifest["schemas"]["input"]
        with urllib.request.urlopen(box.url + "/docs", timeout=10) as resp:
            assert b"docs/swagger-ui-bundle.js" in resp.read()
        with urllib.request.urlopen(box.url + "/docs/swagger-ui-bundle.js", timeout=10) as resp:
            assert resp.status == 200 and b"SwaggerUIBundle" in resp.read()
