"""The V2 protocol's pure parts: the .proto compiled as protoc compiles it, tensors to and from bytes."""

from __future__ import annotations

import struct
import subprocess
import sys

import numpy as np
import pytest
from google.protobuf import descriptor_pb2

from vci.serve import protoc, v2, v2_grpc


def test_the_proto_compiles_to_the_descriptor_protoc_makes(tmp_path):
    out = tmp_path / "set.pb"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{v2_grpc.PROTO.parent}",
            f"--descriptor_set_out={out}",
            v2_grpc.PROTO.name,
        ],
        check=True,
    )
    theirs = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0]
    assert protoc.parse(v2_grpc.PROTO.read_text(), v2_grpc.PROTO.name) == theirs


def test_messages_round_trip_and_unknown_syntax_is_refused():
    m = v2_grpc.messages()
    request = m["ModelInferRequest"](model_name="iris", raw_input_contents=[b"\x01"])
    request.parameters["binary_data_output"].bool_param = True
    again = m["ModelInferRequest"].FromString(request.SerializeToString())
    assert again.parameters["binary_data_output"].WhichOneof("parameter_choice") == "bool_param"
    with pytest.raises(protoc.ProtoSyntaxError, match="unexpected 'enum'"):
        protoc.parse('syntax = "proto3"; enum Colour { RED = 0; }', "x.proto")


def test_binary_request_with_bytes_elements_and_a_binary_response():
    head = b'{"inputs": [{"name": "w", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": 11}},'
    head += b' {"name": "n", "shape": [1, 2], "datatype": "INT16", "data": [[1, -2]]}], "outputs": [{"name": "n",'
    head += b' "parameters": {"binary_data": true}}]}'
    words = struct.pack("<I", 2) + b"ab" + struct.pack("<I", 1) + b"c"
    request = v2.parse_request(head + words, len(head))
    inputs = v2.model_inputs(request)
    assert inputs["w"].tolist() == [b"ab", b"c"] and inputs["n"].dtype == np.int16 and inputs["n"].shape == (1, 2)
    outputs = v2.output_tensors({"n": inputs["n"], "other": [1.5]}, request.outputs)
    body, length = v2.encode_response("m", "v", request, outputs)
    assert length is not None and body[length:] == np.array([1, -2], dtype="<i2").tobytes()


@pytest.mark.parametrize(
    "raw,text",
    [
        (struct.pack("<I", 9) + b"ab", "element of 9 bytes runs past the end"),
        (struct.pack("<I", 1) + b"ab", "1 bytes after its 1 elements"),
        (b"\x01\x00", "ends inside an element's length"),
    ],
)
def test_malformed_bytes_elements_are_refused(raw, text):
    with pytest.raises(v2.ProtocolError, match=text):
        v2.array_from_bytes("BYTES", [1], raw, "input 'w'")


def test_datatypes_of_results():
    assert v2.datatype_of(np.array([1.0], dtype=np.float16)) == "FP16"
    assert v2.datatype_of(np.array(["setosa"])) == "BYTES"
    assert v2.datatype_of(np.array([True])) == "BOOL"
    with pytest.raises(v2.ProtocolError, match="no datatype"):
        v2.datatype_of(np.array([1j]))
