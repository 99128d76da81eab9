"""JAX/Flax: a small linen MLP trained here, saved as its definition + msgpack variables + structure file,
loaded as the server does and compared with the original's predictions."""

from importlib import metadata

import numpy as np
import pytest

import vci
from tests.frameworks.conftest import assert_close, log_and_load, pinned
from vci.validator import Validator

jax = pytest.importorskip("jax")
nn = pytest.importorskip("flax.linen")
optax = pytest.importorskip("optax")
from flax.training import train_state  # noqa: E402


class MLP(nn.Module):
    hidden: int = 8
    out: int = 2

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.out)(nn.tanh(nn.Dense(self.hidden)(x)))


@pytest.fixture(scope="module")
def trained() -> tuple[train_state.TrainState, np.ndarray]:
    """Trained once for this module's tests (jit compiles the step: seconds on a loaded machine)."""
    X = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    y = np.stack([X.sum(axis=1), X[:, 0] - X[:, 2]], axis=1)
    net = MLP()
    params = net.init(jax.random.PRNGKey(0), X[:1])["params"]
    state = train_state.TrainState.create(apply_fn=net.apply, params=params, tx=optax.adam(0.05))

    @jax.jit
    def step(state):
        loss = lambda p: ((state.apply_fn({"params": p}, X) - y) ** 2).mean()  # noqa: E731
        return state.apply_gradients(grads=jax.grad(loss)(state.params))

    for _ in range(30):
        state = step(state)
    return state, X


def test_a_train_state_round_trips_through_msgpack_and_its_structure(store, trained):
    state, X = trained
    model, manifest = log_and_load(state, store)
    assert model.meta["format"] == "flax_msgpack" and model.meta["framework"] == "jax"
    assert model.device == ("cpu" if jax.devices()[0].platform == "cpu" else f"{jax.devices()[0].platform}:0")
    expected = np.asarray(state.apply_fn({"params": state.params}, X[:4]))
    assert_close(model.predict(X[:4].tolist()), expected)
    assert_close(model.predict(X[0].tolist()), expected[0])
    assert_close(model.batch_predict([X[:1].tolist(), X[1:4].tolist()])[1], expected[1:4])
    assert pinned(manifest, "flax") == metadata.version("flax") and pinned(manifest, "jax") == metadata.version("jax")
    assert any(e["name"] == "jaxlib" for e in manifest["lock"])
    assert manifest["schemas"]["from"]["input"] == "jax"
    schema = Validator(manifest["schemas"]["input"])
    assert schema.problem(X[:2].tolist()) is None and schema.problem([[1.0] * 8]) == "$[0]: expected 3 items, got 8"


def test_a_bound_module_is_logged_and_an_unbound_one_refused(store, trained):
    state, X = trained
    bound = MLP().bind({"params": state.params})
    model, _ = log_and_load(bound, store)
    assert_close(model.predict(X[:2].tolist()), np.asarray(bound(X[:2])))
    with pytest.raises(vci.ModelValidationError, match="carries no parameters") as refused:
        log_and_load(MLP(), store)
    assert "TrainState" in refused.value.hint


def test_variables_that_do_not_match_their_structure_file_are_refused(store, tmp_path, trained):
    from vci.frameworks import model_for

    state, _ = trained
    packed = model_for(state, tmp_path / "packed")
    saved = packed.artifacts["model"]
    (saved / "structure.json").write_text('{"params/Dense_0/kernel": {"shape": [9, 9], "dtype": "float32"}}\n')
    with pytest.raises(vci.ModelValidationError, match="do not have the structure recorded"):
        packed.model_class({"model": str(saved), "model.json": str(packed.artifacts["model.json"])})


def test_a_flax_model_is_served_by_a_server_process(store, tmp_path, monkeypatch, trained):
    """The module's class lives in this test file: the server process gets it from the pickle (by value)."""
    from vci.deploy import undeploy

    monkeypatch.chdir(tmp_path)
    state, X = trained
    run = vci.init("flax-served", store=store)
    run.log_model(state)
    try:
        run.deploy(wait=True)
        served = run.get_deployed_model()
        expected = np.asarray(state.apply_fn({"params": state.params}, X[:3]))
        assert_close(served.predict(X[:3].tolist()), expected)
        assert_close(served.batch_predict([X[:1].tolist(), X[1:3].tolist()])[1], expected[1:3])
    finally:
        undeploy(run.settings, "staging")
