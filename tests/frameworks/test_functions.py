"""Plain Python functions: pickled by value, predict calls them; other instances are still refused."""

import pytest

from tests.frameworks.conftest import log_and_load


def add_totals(data):
    return {"total": sum(row["price"] * row["qty"] for row in data), "rows": len(data)}


def test_function_round_trip(store):
    model, manifest = log_and_load(add_totals, store)
    assert manifest["model"]["class"] == "vci.frameworks.functions.FunctionModel"
    data = [{"price": 2.5, "qty": 2}, {"price": 1.0, "qty": 3}]
    assert model.predict(data) == add_totals(data) == {"total": 8.0, "rows": 2}
    assert model.batch_predict([data, data[:1]]) == [add_totals(data), add_totals(data[:1])]


def test_lambda_with_a_closure(store):
    factor = 3
    model, _ = log_and_load(lambda xs: [x * factor for x in xs], store)
    assert model.predict([1, 2]) == [3, 6]


class NotAModel:
    def predict(self, data):
        return data


def test_instances_of_plain_classes_are_still_refused(store):
    from vci.errors import ModelValidationError

    with pytest.raises(ModelValidationError, match="got an instance of NotAModel, not a class"):
        log_and_load(NotAModel(), store)
