"""Predictions computed from a checkpoint's raw state_dict with plain torch, no Lightning.

The independent reference: if litpredict did not really load the checkpoint (or loaded
it into the wrong places), its predictions differ from these.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def state_dict(ckpt_path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt_path, map_location="cpu", weights_only=True)["state_dict"]


@torch.no_grad()
def linear(sd: dict, x: np.ndarray) -> np.ndarray:
    x = torch.as_tensor(x, dtype=torch.float32)
    return F.linear(x, sd["linear.weight"], sd["linear.bias"]).numpy()


@torch.no_grad()
def cnn_classes(sd: dict, x: np.ndarray) -> np.ndarray:
    h = torch.as_tensor(x, dtype=torch.float32)
    h = F.max_pool2d(
        F.relu(F.conv2d(h, sd["features.0.weight"], sd["features.0.bias"], padding=1)), 2
    )
    h = F.max_pool2d(
        F.relu(F.conv2d(h, sd["features.3.weight"], sd["features.3.bias"], padding=1)), 2
    )
    h = F.adaptive_avg_pool2d(h, 4).flatten(1)
    h = F.relu(F.linear(h, sd["classifier.1.weight"], sd["classifier.1.bias"]))
    logits = F.linear(h, sd["classifier.3.weight"], sd["classifier.3.bias"])
    return logits.argmax(dim=1).numpy()


@torch.no_grad()
def lstm(sd: dict, x: np.ndarray) -> np.ndarray:
    hidden_size = sd["lstm.weight_hh_l0"].shape[1]
    input_size = sd["lstm.weight_ih_l0"].shape[1]
    module = torch.nn.LSTM(input_size, hidden_size, batch_first=True)
    module.load_state_dict(
        {k.removeprefix("lstm."): v for k, v in sd.items() if k.startswith("lstm.")}
    )
    hidden, _ = module(torch.as_tensor(x, dtype=torch.float32))
    return F.linear(hidden, sd["head.weight"], sd["head.bias"]).numpy()


FORWARD = {"linear_regression": linear, "image_classification": cnn_classes, "sequence": lstm}
