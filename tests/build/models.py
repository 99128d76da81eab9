"""Model classes for packaging tests (kept out of test modules: pytest rewrites their asserts, and the
rewritten code would pickle a reference to _pytest, which an image does not have)."""


class Scaler:
    """A model with one artifact: multiplies its input by the number stored in ``factor``."""

    def __init__(self, artifacts):
        self.factor = float(open(artifacts["factor"]).read().split()[0])

    def predict(self, data):
        return [x * self.factor for x in data]

    def model_test(self):
        if self.predict([1]) != [self.factor]:
            raise RuntimeError("self-test failed")


class YamlScaler:
    """Needs a binary wheel (PyYAML) from the dependency layer, and its artifact from the model layers."""

    def __init__(self, artifacts):
        import yaml

        self.factor = yaml.safe_load(open(artifacts["factor"]).read())["factor"]

    def predict(self, data):
        import os

        return {"scaled": [x * self.factor for x in data], "uid": os.getuid()}

    def model_test(self):
        if self.predict([1])["scaled"] != [self.factor]:
            raise RuntimeError("self-test failed")


class BrokenScaler(Scaler):
    """Loads, but its self-test fails: a server running it never becomes ready."""

    def model_test(self):
        raise RuntimeError("self-test failed on purpose")


class BrokenInitScaler(Scaler):
    """Cannot be constructed: a server running it exits, and its container restarts again and again."""

    def __init__(self, artifacts):
        raise ValueError("the factor file is from another model version")
