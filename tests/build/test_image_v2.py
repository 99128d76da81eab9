"""The packaged image speaks the Open Inference Protocol: Triton's clients over REST and gRPC, the image under runc."""

import socket

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from images import base_image_layout, run_image
from vci.build import Options
from vci.build.package import package

from .conftest import log_scaler
from .models import YamlScaler
from .test_image_runs import wait_ready


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_image_answers_v2_over_rest_and_grpc(settings, tmp_path):
    requirements = ["PyYAML", "numpy", "grpcio", "protobuf<7"]
    run = log_scaler(settings, tmp_path, "factor: 3", cls=YamlScaler, requirements=requirements)
    base = f"oci:{base_image_layout()}:base"
    package(settings, run.id, Options(base=base, layout=str(tmp_path / "image")))
    grpc_port = free_port()
    with run_image(f"oci:{tmp_path / 'image'}:{run.id}", env={"VCI_GRPC_PORT": str(grpc_port)}) as box:
        wait_ready(box.url, box)
        rows = np.array([[1, 2]], dtype=np.int32)
        rest = httpclient.InferenceServerClient(box.url.removeprefix("http://"))
        tensor = httpclient.InferInput("x", [1, 2], "INT32")
        tensor.set_data_from_numpy(rows)
        answer = rest.infer("scaler", [tensor], model_version=run.version)
        assert answer.as_numpy("scaled").tolist() == [[3, 6]] and answer.as_numpy("uid").tolist() == 65532
        remote = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        assert remote.is_model_ready("scaler", model_version=run.version), box.logs()
        tensor = grpcclient.InferInput("x", [1, 2], "INT32")
        tensor.set_data_from_numpy(rows)
        assert remote.infer("scaler", [tensor]).as_numpy("scaled").tolist() == [[3, 6]]
