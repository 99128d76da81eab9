"""The app over a Kubernetes environment (the API test server, each pod a real model server): the board
shows the image the Deployment runs, and the live charts scrape /metrics through the service proxy."""

import re
import time

from tests.deploy.conftest import registry, scratch_base, serving_kube, serving_settings  # noqa: F401 (fixtures)
from tests.deploy.serving import built
from tests.ui.conftest import app_client
from vci.deploy import deploy, deployed_model, undeploy


def test_board_and_live_charts_on_a_cluster(serving_settings, tmp_path):  # noqa: F811 (the fixture)
    settings = serving_settings
    image = built(settings, tmp_path, "2")
    try:
        deploy(settings, image, "staging")
        client = app_client(settings, actions=False)
        row = re.search(r'<tr id="env-staging".*?</tr>', client.get("/").get_data(as_text=True), re.S).group(0)
        assert "kubernetes" in row and "ready" in row and image.rsplit("@", 1)[1][:19] in row
        assert "problem" not in client.get("/env/staging/live").get_data(as_text=True)
        model = deployed_model(settings, "staging")
        for _ in range(20):
            model.predict([1, 2])
        time.sleep(1.1)  # the sampler scrapes an environment at most once a second
        page = client.get("/env/staging/live").get_data(as_text=True)
        assert 'class="error"' not in page, page
        rate = re.search(r'aria-label="requests \(req/s\)".*?class="chart-now">now ([0-9.e+-]+)<', page, re.S)
        assert rate and float(rate.group(1)) > 0  # the requests counted between the two scrapes
    finally:
        undeploy(settings, "staging")
