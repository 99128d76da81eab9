"""An environment's ``validate`` setting reaches its local server: on by default (422), off with ``false``."""

import pytest

import vci
from vci.errors import RemoteError

from .conftest import local_settings


class Doubler:
    def __init__(self, artifacts):
        pass

    def predict(self, data):
        return [x * 2 for x in data]


@pytest.mark.parametrize("staging, status", [("{}", 422), ("{validate: false}", 200)])
def test_the_environments_validate_setting_reaches_its_server(tmp_path, monkeypatch, staging, status):
    settings = next(fixture := local_settings(tmp_path, monkeypatch, staging, "validate"))
    try:
        run = vci.init("validate", settings=settings)
        run.log_model(Doubler, artifacts=[])
        run.log_examples([[1, 2]], [[2, 4]])  # a list of numbers
        run.deploy(wait=True)
        model = run.get_deployed_model()
        if status == 200:
            assert model.predict(["a"]) == ["aa"]  # unchecked: the model sees what was sent
        else:
            with pytest.raises(RemoteError, match=r"\$\[0\]: expected number, got string") as refused:
                model.predict(["a"])
            assert refused.value.status == 422
    finally:
        next(fixture, None)
