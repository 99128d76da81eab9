"""JAX models written with Flax (linen): the module's definition by value and its variables as Flax msgpack,
with a structure file (each parameter's path, shape and dtype) that the variables are checked against at load.

A trained model is logged as a ``flax.training.train_state.TrainState`` (its ``apply_fn`` a module's ``apply``)
or as a bound module (``module.bind(variables)``); an unbound module holds no parameters and is refused.
"""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

from ..errors import ModelValidationError
from .base import FrameworkModel, dumps_by_value, require, versions
from .convert import to_array

REQUIREMENTS = ["flax", "jax", "numpy"]
log = logging.getLogger("vci")


def pack(obj, directory: Path) -> tuple[Path, dict, list[str]]:
    """A ``model/`` directory: ``module.pkl`` (the definition, no weights), ``variables.msgpack``,
    ``structure.json``; model.json gets the input dtype and, when one width fits the module, the row width."""
    import flax
    import jax
    import numpy

    module, variables = _module_and_variables(obj)
    variables = jax.tree_util.tree_map(numpy.asarray, variables)
    path = directory / "model"
    path.mkdir()
    (path / "module.pkl").write_bytes(dumps_by_value(module))
    (path / "variables.msgpack").write_bytes(flax.serialization.msgpack_serialize(variables))
    (path / "structure.json").write_text(json.dumps(structure(variables), indent=2, sort_keys=True) + "\n")
    dtype = _dtype(variables)
    meta = {"format": "flax_msgpack", "dtype": dtype, "n_features": _width(jax, module, variables, dtype)}
    return path, {**meta, "versions": versions(*REQUIREMENTS, "jaxlib")}, REQUIREMENTS


def _module_and_variables(obj) -> tuple:
    """(unbound module, variables) of a TrainState or a bound linen Module."""
    import flax.linen as nn

    owner = getattr(getattr(obj, "apply_fn", None), "__self__", None)  # a TrainState's module.apply
    if isinstance(owner, nn.Module) and hasattr(obj, "params"):
        return owner, {"params": obj.params}
    if isinstance(obj, nn.Module) and obj.scope is not None:
        return obj.unbind()
    raise ModelValidationError(
        f"a {type(obj).__name__} carries no parameters vci can save",
        hint="log a TrainState.create(apply_fn=module.apply, params=...) or module.bind(variables)",
    )


def structure(variables) -> dict[str, dict]:
    """``{"params/Dense_0/kernel": {"shape": [3, 8], "dtype": "float32"}, ...}``: what the variables hold."""
    import flax

    flat = flax.traverse_util.flatten_dict(variables, sep="/")
    return {name: {"shape": list(array.shape), "dtype": str(array.dtype)} for name, array in sorted(flat.items())}


def _dtype(variables) -> str:
    """The dtype inputs are cast to: the first floating parameter's (float32 if none)."""
    import numpy

    for array in _leaves(variables):
        if numpy.issubdtype(array.dtype, numpy.floating):
            return str(array.dtype)
    return "float32"


def _leaves(variables) -> list:
    import jax

    return jax.tree_util.tree_leaves(variables)


def _width(jax, module, variables, dtype: str) -> int | None:
    """The row width the module takes: the one first dimension of a 2-D kernel for which the module
    traces (jax.eval_shape, no computation); None when none or several do."""
    widths = {int(a.shape[0]) for a in _leaves(variables) if a.ndim == 2}
    fits = []
    for width in sorted(widths):
        try:
            jax.eval_shape(lambda x: module.apply(variables, x), jax.ShapeDtypeStruct((1, width), dtype))
        except Exception:  # a width the module does not take fails in any of many ways
            continue
        fits.append(width)
    return fits[0] if len(fits) == 1 else None


class JaxModel(FrameworkModel):
    """Rows -> one array of the parameters' dtype -> the jitted ``module.apply`` -> lists."""

    module = "jax"
    package = "jax"

    def load(self, path: str) -> None:
        jax, flax = self.lib, require("flax", "flax")
        import cloudpickle  # noqa: F401  (by-value pickles need it importable)

        folder = Path(path)
        with open(folder / "module.pkl", "rb") as f:  # the blob was digest-verified before this
            net = pickle.load(f)
        self.variables = flax.serialization.msgpack_restore((folder / "variables.msgpack").read_bytes())
        expected = json.loads((folder / "structure.json").read_text())
        if structure(self.variables) != expected:
            raise ModelValidationError(
                "the Flax variables do not have the structure recorded beside them (structure.json)",
                hint="log the model again: its files were written by another version or changed",
            )
        self.placement = jax.devices()[0]  # the first device jax sees: a GPU or TPU where its build has one
        platform = self.placement.platform
        self.device = "cpu" if platform == "cpu" else f"{platform}:{self.placement.id}"  # for /metadata
        self.variables = jax.device_put(self.variables, self.placement)
        self.apply = jax.jit(net.apply)
        self.dtype = self.meta.get("dtype", "float32")
        log.info("jax: Flax module %s loaded (%d arrays), device %s", type(net).__name__, len(expected), self.device)

    def predict_rows(self, table):
        import numpy

        inputs = self.lib.device_put(to_array(table, self.dtype), self.placement)
        return numpy.asarray(self.apply(self.variables, inputs))


MODEL_CLASS = JaxModel
