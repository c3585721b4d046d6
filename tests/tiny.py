"""A tiny SA-LSTM with random weights, for tests that need a real model but no training."""
import torch

import config as config_module
from models.sa_lstm import build_model


def tiny_config(**overrides):
    values = {"model.hidden_size": 16, "model.embedding_size": 8, "model.attention_size": 8,
              "features.n_frames": 4, "model.dropout": 0.0}
    values.update(overrides)
    return config_module.build("Demo", **values)


def tiny_model(vocab_size=7, feature_size=5, seed=0, **overrides):
    torch.manual_seed(seed)
    config = tiny_config(**overrides)
    model = build_model(config, vocab_size, feature_size).eval()
    with torch.no_grad():  # peakier distributions than the default init: beams disagree more
        model.decoder.readout.weight.mul_(4.0)
    return model, config


def tiny_clips(batch=3, k=4, dim=5, seed=1):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(batch, k, dim, generator=generator)
    mask = torch.ones(batch, k, dtype=torch.bool)
    mask[0, 2:] = False          # one short clip: two real frames
    return features, mask
