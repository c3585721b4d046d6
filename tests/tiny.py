"""A tiny SA-LSTM with random weights and tiny data, for tests that need a real model but no training."""
import torch

import config as config_module
from loader.captions import build_vocabulary, encode_targets
from loader.corpus import TrainingData
from loader.dataset import VideoSplit
from models.sa_lstm import build_model
from tests.devices import SECOND_DEVICE


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


REFERENCES = [["a man runs", "a man is running fast"], ["a dog sits"], ["two cats play", "cats play"],
              ["a red car drives"], ["a woman sings a song"]]


def tiny_data(device, config) -> TrainingData:
    """A TrainingData on the device, as loader.corpus.load_training_data places it."""
    generator = torch.Generator().manual_seed(0)
    k, dim = config.features.n_frames, 5

    def split(name, references, device):
        features = torch.randn(len(references), k, dim, generator=generator)
        mask = torch.ones(len(references), k, dtype=torch.bool)
        mask[0, 2:] = False
        return VideoSplit(name, [f"{name}{i}" for i in range(len(references))], features, mask,
                          references, n_frames=[k] * len(references)).to(device)

    # the test split stays on the CPU until it is decoded
    train, val = split("train", REFERENCES, device), split("val", REFERENCES[:3], device)
    test = split("test", REFERENCES[1:], "cpu")
    vocab = build_vocabulary(train.references, config.loader)
    targets = [encode_targets(s.references, vocab, config.loader).to(device) for s in (train, val)]
    return TrainingData(train, val, test, vocab, *targets)


def small_setup(device=SECOND_DEVICE, **overrides):
    """(model, config, data) on the device; batches of 3 captions, beam 2, 3 words at most."""
    config = tiny_config(**{"loader.batch_size": 3, "loader.eval_batch_size": 2, "eval.beam_size": 2,
                            "eval.max_len": 3, **overrides})
    data = tiny_data(device, config)
    model = build_model(config, len(data.vocab), data.feature_size).to(device)
    return model, config, data


class NoWriter:
    def add_scalar(self, *args, **kwargs):
        pass

    def close(self):
        pass
