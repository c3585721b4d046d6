"""Load a local weights file (nothing is downloaded) into a network, saying what does not fit."""
from __future__ import annotations

import os
import pickle

import torch
from torch import nn

from utils import DataError


def read_state_dict(path: str) -> dict:
    """A bare state dict, or one under 'state_dict' or 'model', without DataParallel's 'module.' prefixes."""
    if not os.path.isfile(path):
        raise DataError(f"weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError) as error:
        raise DataError(f"weights file {path} is not a readable PyTorch state dict: {error}") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise DataError(f"weights file {path} holds no state dict (name -> tensor)")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def load_state_dict(network: nn.Module, path: str, name: str, unused_prefixes: tuple = ()) -> None:
    """Every parameter must fit, except those under unused_prefixes (auxiliary classifiers)."""
    state = read_state_dict(path)
    try:
        result = network.load_state_dict(state, strict=False)
    except RuntimeError as error:  # a tensor of the wrong shape
        raise DataError(f"weights file {path} does not fit backbone {name}: {error}") from None
    missing = [k for k in result.missing_keys if not k.startswith(unused_prefixes)]
    unexpected = [k for k in result.unexpected_keys if not k.startswith(unused_prefixes)]
    if missing or unexpected:
        raise DataError(f"weights file {path} does not fit backbone {name}: "
                        f"{len(missing)} missing (e.g. {missing[:3]}), "
                        f"{len(unexpected)} unexpected (e.g. {unexpected[:3]}); "
                        "is it the state dict of this very architecture?")
