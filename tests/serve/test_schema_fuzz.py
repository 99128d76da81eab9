"""Schemathesis, driven by the server's own /openapi.json, finds no 5xx: every input the schema allows is
answered 200 by a model that fails on anything else, and every input it does not allow is refused (4xx)
before the model sees it."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from vci.schema import from_examples

from .models import RowWidthModel

schemathesis = pytest.importorskip("schemathesis")
ROWS = from_examples([[[5.1, 3.5, 1.4, 0.2]], [[6.7, 3.0, 5.2, 2.3]]])  # rows of 4 numbers, as iris
SCHEMAS = {"input": ROWS, "output": None, "from": {"input": "examples", "output": None}}
EXAMPLES = {"inputs": [[[5.1, 3.5, 1.4, 0.2]]], "expected_outputs": None}
STATUS_OF = {"positive": {200}, "negative": {400, 413, 415, 422}}


@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize("path", ["/predict", "/batch-predict"])
def test_no_input_gets_a_server_error(start_server, path, mode):
    server = start_server(RowWidthModel, schemas=SCHEMAS, examples=EXAMPLES)
    server.wait_state()
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operation = schema[path]["POST"]
    seen = []

    @given(case=operation.as_strategy(schemathesis.GenerationMode(mode)))
    @settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call(base_url=server.url, timeout=10)
        seen.append(response.status_code)
        assert response.status_code in STATUS_OF[mode], (case.body, response.status_code, response.text[:300])

    check()
    assert len(seen) >= 20  # it did send requests
    assert not [line for line in server.stray_lines() if "Traceback" in line]
