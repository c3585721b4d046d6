"""training/steps.py: the training step's memory (the step's values are tested through
train_epoch in tests/test_fast_path.py, tests/test_training.py and tests/test_cuda_graphs.py)."""
import pytest
import torch
from torch.multiprocessing.reductions import StorageWeakRef

from loader.batches import make_caption_batch
from training.update import batch_loss
from tests.tiny import small_setup
from tests.variants import settings_id


@pytest.mark.parametrize("overrides", [{}, {"train.label_smoothing": 0.1, "train.attention_penalty": 0.5}], ids=settings_id)
def test_the_logits_are_freed_before_backward(overrides):
    model, config, data = small_setup(device="cpu", **overrides)
    produced = []
    model.decoder.readout.register_forward_hook(lambda module, inputs, output: produced.append(
        StorageWeakRef(output.untyped_storage())))
    batch = make_caption_batch(data.train, data.train_targets, torch.tensor([0, 1, 2]))
    loss, _ = batch_loss(model, batch, config.train, 0.0)
    assert len(produced) == 1 and produced[0].expired()    # autograd kept their log-softmax only
    loss.backward()
