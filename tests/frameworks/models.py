"""A user's own torch module, in a module of its own (pickled by value: an image does not have this file)."""

import torch


class TinyNet(torch.nn.Module):
    def __init__(self, n_in: int, n_out: int):  # constructor arguments: vci never calls it again
        super().__init__()
        self.layer = torch.nn.Linear(n_in, n_out)
        self.register_buffer("shift", torch.full((n_out,), 0.5), persistent=False)

    def forward(self, x):
        return torch.tanh(self.layer(x)) + self.shift
