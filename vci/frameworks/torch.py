"""PyTorch modules: TorchScript (torch.jit.save) for scripted or traced ones, else the module's class by
value plus its weights as a state_dict (torch.save), loaded back with ``weights_only=True``; on the GPU
(``cuda:0``) where this torch can use one (``torch.cuda.is_available()``: a CUDA build, driver and device), else
on the CPU. The device is logged at load and reported by the server's ``/metadata``."""

from __future__ import annotations

import copy
import logging
import pickle
from pathlib import Path

from ..errors import ModelValidationError
from .base import FrameworkModel, dumps_by_value, versions
from .convert import to_array

REQUIREMENTS = ["torch", "numpy"]
log = logging.getLogger("vci")


def pack(module, directory: Path) -> tuple[Path, dict, list[str]]:
    """TorchScript to ``model.pt``, or a ``model/`` directory: ``module.pkl`` (the architecture, its tensors
    on the meta device: no weights), ``weights.pt`` (the state_dict), ``buffers.pt`` (non-persistent ones)."""
    import torch

    if not isinstance(module, torch.nn.Module):
        raise ModelValidationError(
            f"a {type(module).__name__} is not a torch.nn.Module",
            hint="log a trained nn.Module, or a torch.jit.script/trace of one",
        )
    meta = {"dtype": _dtype_name(module), "n_features": _width(torch, module), "versions": versions(*REQUIREMENTS)}
    if isinstance(module, torch.jit.ScriptModule):
        path = directory / "model.pt"
        torch.jit.save(module, str(path))
        return path, {"format": "torchscript", **meta}, REQUIREMENTS
    path = directory / "model"
    path.mkdir()
    persistent = set(module.state_dict())
    buffers = {name: b for name, b in module.named_buffers() if name not in persistent}
    torch.save(module.state_dict(), path / "weights.pt")
    torch.save(buffers, path / "buffers.pt")
    (path / "module.pkl").write_bytes(dumps_by_value(copy.deepcopy(module).to("meta")))
    return path, {"format": "state_dict", "class": type(module).__qualname__, **meta}, REQUIREMENTS


def _width(torch, module) -> int | None:
    """The row length a ``Sequential`` that starts with a ``Linear`` takes (the input schema's); else None:
    another module's forward may read its input in any order."""
    if isinstance(module, torch.nn.Sequential) and len(module) and isinstance(module[0], torch.nn.Linear):
        return int(module[0].in_features)
    return None


def _dtype_name(module) -> str:
    """The dtype inputs are cast to: the module's first floating parameter's (float32 if none)."""
    for tensor in [*module.parameters(), *module.buffers()]:
        if tensor.is_floating_point():
            return str(tensor.dtype).removeprefix("torch.")
    return "float32"


class TorchModel(FrameworkModel):
    """Rows -> one tensor of the module's dtype -> forward in inference mode -> lists."""

    module = "torch"
    package = "torch"

    def load(self, path: str) -> None:
        torch = self.lib
        self.dtype = getattr(torch, self.meta.get("dtype", "float32"))
        self.device = gpu_device(torch)
        if self.meta["format"] == "torchscript":
            self.net = torch.jit.load(path, map_location=self.device)
        else:
            self.net = _load_state_dict_module(torch, Path(path), self.device)
        self.net.eval()
        log.info("torch model on %s", self.device)

    def predict_rows(self, table):
        torch = self.lib
        inputs = torch.as_tensor(to_array(table), dtype=self.dtype, device=self.device)
        with torch.inference_mode():
            outputs = self.net(inputs)
        return outputs.cpu() if hasattr(outputs, "cpu") else outputs


def gpu_device(torch) -> str:
    """``cuda:0`` where this torch sees a GPU it can use (a CUDA build, a driver, a device), else ``cpu``."""
    return "cuda:0" if torch.cuda.is_available() else "cpu"


def _load_state_dict_module(torch, path: Path, device: str = "cpu"):
    import cloudpickle  # noqa: F401  (by-value pickles need it importable)

    with open(path / "module.pkl", "rb") as f:  # the blob was digest-verified before this
        skeleton = pickle.load(f)
    net = skeleton  # its tensors are on the meta device: assign=True puts the loaded ones in their place
    net.load_state_dict(torch.load(path / "weights.pt", map_location=device, weights_only=True), assign=True)
    for name, tensor in torch.load(path / "buffers.pt", map_location=device, weights_only=True).items():
        owner, _, attr = name.rpartition(".")
        net.get_submodule(owner).register_buffer(attr, tensor, persistent=False)
    return net


MODEL_CLASS = TorchModel
