"""Model classes the server tests serve; pickled by value, so the server process never imports this file."""

from __future__ import annotations

import os
import threading
import time

from vci.errors import ModelError


class EchoModel:
    """Echoes its input; special inputs exercise errors, slowness and the artifact."""

    def __init__(self, artifacts):
        with open(artifacts["greeting"]) as f:
            self.greeting = f.read().strip()
        self.calls = 0

    def predict(self, data):
        self.calls += 1
        if data == "reject":
            raise ModelError("inputs named 'reject' are refused", 422)
        if data == "boom":
            raise RuntimeError("secret-internal-detail")
        if data == "not-json":
            return object()
        if data == "date":
            import datetime

            return {"rows": [{"at": datetime.datetime(2026, 11, 24, 12, 0)}]}
        if data == "tuple-key":
            return {(1, 2): "pair"}
        if data == "exit":
            raise SystemExit(3)  # a model must not be able to stop the server
        if isinstance(data, dict) and "sleep" in data:
            time.sleep(float(data["sleep"]))
        return {"greeting": self.greeting, "echo": data}

    def model_test(self):
        assert self.predict(1)["echo"] == 1


class BatchModel:
    """Has batch_predict, so /batch-predict must use it rather than predict per item."""

    def __init__(self, artifacts):
        pass

    def predict(self, data):
        return {"single": data}

    def batch_predict(self, items):
        return [{"batched": item, "size": len(items)} for item in items]


class SetModel:
    """Answers with sets: of strings (their order depends on the process's PYTHONHASHSEED) and mixed."""

    def __init__(self, artifacts):
        pass

    def predict(self, data):
        return {"words": {f"word-{i}" for i in range(32)}, "mixed": {1, "one"}}


class FailingSelfTestModel:
    def __init__(self, artifacts):
        pass

    def predict(self, data):
        return data

    def model_test(self):
        raise ValueError("the weights are all zero")


class SlowLoadModel:
    """Takes a while to construct, so /healthz can be probed during the load."""

    def __init__(self, artifacts):
        time.sleep(float(os.environ.get("SLOW_LOAD_SECONDS", "1.5")))

    def predict(self, data):
        return data


class BrokenInitModel:
    """Cannot be constructed: the server must exit with ServeError's code, the traceback in its log."""

    def __init__(self, artifacts):
        raise RuntimeError("weights file is from another model version")

    def predict(self, data):
        return data


class SlowFirstCallModel:
    """No model_test, and its first predict is slow (a lazy import or a JIT warm-up, say)."""

    def __init__(self, artifacts):
        self.warm = False

    def predict(self, data):
        if not self.warm:
            time.sleep(1.5)
            self.warm = True
        return data


class CountingBatchModel:
    """Numbers its batch_predict calls, so a client can count the model calls behind its answers, and names
    the thread each ran in; an item "bad" fails the whole batch call (and predict on its own), {"sleep": s}
    makes the call slow."""

    def __init__(self, artifacts):
        self.calls = 0

    def predict(self, data):
        if data == "bad":
            raise ValueError("cannot score 'bad'")
        return {"single": data}

    def batch_predict(self, items):
        self.calls += 1
        if "bad" in items:
            raise ValueError("cannot score 'bad'")
        for item in items:
            if isinstance(item, dict) and "sleep" in item:
                time.sleep(float(item["sleep"]))
        thread = threading.current_thread().name
        return [{"item": item, "call": self.calls, "size": len(items), "thread": thread} for item in items]


class TensorEchoModel:
    """Says what it was called with through V2 (a dict of arrays: each one's name, type, dtype and shape)
    and sums the numbers it got."""

    def __init__(self, artifacts):
        pass

    def predict(self, data):
        types = [f"{name}:{type(a).__name__}:{a.dtype}:{a.shape}" for name, a in data.items()]
        return {"types": types, "total": [int(data["counts"].sum())]}


class EnvPeekModel:
    """Answers whether the server's own secrets reached the model's environment."""

    def __init__(self, artifacts):
        pass

    def predict(self, data):
        return {"token_in_env": "VCI_AUTH_TOKEN" in os.environ, "echo": data}


class SumModel:
    """Sums each row: the iris shape (rows of 4 numbers), so a wrong input reaching it raises (a 500)."""

    def __init__(self, artifacts):
        pass

    def predict(self, data):
        return [sum(row) for row in data]


class RowWidthModel:
    """The width of each row: any input that is not a list of lists makes it raise (a 500 if it got through)."""

    def __init__(self, artifacts):
        pass

    def predict(self, data):
        return [len(row) + 0 * sum(1 for x in row if x + 0 == x) for row in data]


class BatchSumModel(SumModel):
    """SumModel that can be batched: each item is a list of rows, answered by the sum of each row."""

    def batch_predict(self, items):
        return [self.predict(item) for item in items]
