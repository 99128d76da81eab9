"""GET /openapi.json is a valid OpenAPI 3.1 document of the model; GET /docs renders it and tries a request,
offline: every asset comes from the server itself (a real Chromium with every other host blocked)."""

from __future__ import annotations

import json
import shutil

import pytest

from vci.schema import from_examples

from .conftest import http_call
from .models import SumModel

EXAMPLES = {"inputs": [[[5.1, 3.5, 1.4, 0.2]], [[6.7, 3.0, 5.2, 2.3]]], "expected_outputs": [[10.2], [17.2]]}
POINT = {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}
SCHEMAS = {
    "input": from_examples(EXAMPLES["inputs"]),
    "output": {"type": "array", "items": {"$ref": "#/$defs/score"}, "$defs": {"score": {"type": "number"}}},
    "from": {"input": "examples", "output": "declared"},
}


@pytest.fixture()
def server(start_server):
    server = start_server(SumModel, schemas=SCHEMAS, examples=EXAMPLES)
    server.wait_state()
    return server


def test_the_document_is_openapi_3_1_with_the_models_schemas_and_examples(server):
    from openapi_spec_validator import validate

    status, headers, body = http_call(server, "GET", "/openapi.json")
    assert status == 200 and headers["content-type"] == "application/json"
    doc = json.loads(body)
    validate(doc)  # raises on anything OpenAPI 3.1 does not allow
    assert doc["openapi"] == "3.1.0"
    predict = doc["paths"]["/predict"]["post"]
    body_schema = predict["requestBody"]["content"]["application/json"]
    assert body_schema == {"schema": {"$ref": "#/components/schemas/Input"}, "example": EXAMPLES["inputs"][0]}
    assert doc["components"]["schemas"]["Input"] == SCHEMAS["input"]
    output = doc["components"]["schemas"]["Output"]
    assert output["items"] == {"$ref": "#/components/schemas/Output.score"}  # $defs moved where refs resolve
    assert doc["components"]["schemas"]["Output.score"] == {"type": "number"}
    assert predict["responses"]["200"]["content"]["application/json"]["example"] == [10.2]
    assert predict["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    batch = doc["paths"]["/batch-predict"]["post"]["requestBody"]["content"]["application/json"]
    assert batch["schema"] == {"type": "array", "items": {"$ref": "#/components/schemas/Input"}}
    assert doc["info"]["version"] == json.loads(http_call(server, "GET", "/metadata")[2])["model_digest"]


def test_docs_assets_are_served_by_the_server(server):
    status, headers, page = http_call(server, "GET", "/docs")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"http" not in page and b'src="docs/swagger-ui-bundle.js"' in page  # relative URLs only: no CDN
    status, headers, script = http_call(server, "GET", "/docs/swagger-ui-bundle.js")
    assert status == 200 and headers["content-type"].startswith("application/javascript") and len(script) > 100_000
    assert http_call(server, "GET", "/docs/swagger-ui.css")[0] == 200
    assert http_call(server, "GET", "/docs/../manifest.json")[0] == 404


def test_docs_page_renders_and_tries_a_request_offline(server):
    playwright = pytest.importorskip("playwright.sync_api")
    origin = f"http://127.0.0.1:{server.port}"
    asked, blocked = [], []

    def only_the_server(route):
        url = route.request.url
        (asked if url.startswith(origin) else blocked).append(url)
        route.continue_() if url.startswith(origin) else route.abort()

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        try:
            page = browser.new_page()
            page.route("**/*", only_the_server)
            page.goto(f"{origin}/docs", timeout=20_000)
            page.locator("#operations-default-predict").click(timeout=20_000)
            # tryItOutEnabled: the operation opens ready to send (a "Cancel" button where "Try it out" was)
            page.locator("#operations-default-predict").get_by_role("button", name="Cancel").wait_for(timeout=5_000)
            page.locator("#operations-default-predict textarea.body-param__text").fill("[[1, 2, 3, 4]]")
            page.get_by_role("button", name="Execute").click()
            live = page.locator("#operations-default-predict .live-responses-table tbody .response")
            live.first.wait_for(timeout=20_000)  # the server's answer, as the page shows it
            assert live.first.locator(".response-col_status").inner_text().strip() == "200"
            assert json.loads(live.first.locator(".response-col_description pre").first.inner_text()) == [10]
        finally:
            browser.close()
    assert not blocked, blocked  # nothing from a CDN or anywhere else
    assert f"{origin}/openapi.json" in asked and f"{origin}/docs/swagger-ui-bundle.js" in asked
