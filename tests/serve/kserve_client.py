"""KServe's Python client against a V2 server, as a KServe user calls it; run by tests/serve/test_v2_kserve.py
in KServe's own virtualenv (VCI_KSERVE_PYTHON), never imported by the tests.

    python kserve_client.py HTTP_URL GRPC_ADDRESS MODEL   -> one JSON object of what the client saw
"""

import asyncio
import json
import sys

import numpy as np
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig

ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])


def request(model: str, binary: bool, name: str = "input-0") -> InferRequest:
    tensor = InferInput(name, list(ROWS.shape), "FP64")
    tensor.set_data_from_numpy(ROWS, binary_data=binary)
    return InferRequest(model, [tensor], request_id=f"kserve-{binary}")


async def main(url: str, address: str, model: str) -> dict:
    seen: dict = {}
    rest = InferenceRESTClient(RESTConfig(protocol="v2", retries=0))
    seen["rest_ready"] = [await rest.is_server_live(url), await rest.is_server_ready(url)]
    seen["rest_model_ready"] = await rest.is_model_ready(url, model)
    for binary in (False, True):
        response = await rest.infer(url, request(model, binary), model_name=model)
        seen[f"rest_binary_{binary}"] = [response.id, response.outputs[0].as_numpy().tolist()]
    try:
        await rest.infer(url, request("roses", False), model_name="roses")
    except Exception as exc:  # httpx.HTTPStatusError
        seen["rest_error"] = str(exc)
    await rest.close()
    grpc = InferenceGRPCClient(address)
    seen["grpc_ready"] = [await grpc.is_server_live(), await grpc.is_server_ready(), await grpc.is_model_ready(model)]
    response = await grpc.infer(request(model, False))
    seen["grpc_infer"] = [response.id, response.outputs[0].as_numpy().tolist()]
    try:
        await grpc.infer(request("roses", False))
    except Exception as exc:  # grpc.aio.AioRpcError
        seen["grpc_error"] = [exc.code().name, exc.details()]
    await grpc.close()
    return seen


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:4]))))
