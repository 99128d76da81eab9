"""PyTorch: learn y = 2x + 1 with a user nn.Module, log it (class by value + state_dict), load it back
as the server does, predict. A torch.jit.script/trace of a module is logged as TorchScript instead.

Run from anywhere:  python examples/torch/main.py
"""

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from net import Line  # noqa: E402

import vci  # noqa: E402


def main() -> dict:
    torch.manual_seed(0)
    net = Line()
    x = torch.linspace(-1, 1, 32).unsqueeze(1)
    opt = torch.optim.SGD(net.parameters(), lr=0.2)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), 2 * x + 1).backward()
        opt.step()
    run = vci.init(project="torch-example")
    run.log_model(net.eval())  # class by value, weights as a state_dict; torch/numpy pinned
    run.commit()
    model = vci.get_run(run.id).load_model()  # built exactly as the model server builds it
    got = model.predict([[1.0], [2.0]])
    with torch.no_grad():
        original = net(torch.tensor([[1.0], [2.0]])).tolist()
    result = {
        "run_id": run.id,
        "model_class": run.manifest["model"]["class"],
        "prediction": [[round(v, 2) for v in row] for row in got],
        "same_as_original": got == original,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
