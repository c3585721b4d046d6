"""The CPU waits for the GPU only where it must: a training epoch and the validation loss once
each, for their mean loss at the end. Every other wait (a blocking copy from the host, a value
read back) would stop the CPU from queueing the next batch while the GPU runs this one.

torch.cuda's sync debug mode warns at each such wait, so these tests need CUDA (SALSTM_TEST_DEVICE=cuda
runs them); on the CPU only utils.to_device's choice of copy is checked.
"""
import warnings

import pytest
import torch

import train as train_module
from tests.tiny import NoWriter, small_setup
from utils import to_device

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def waits_of(fn) -> list:
    """Where fn made the CPU wait for the GPU: 'file:line' of each synchronizing operation."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return [f"{w.filename}:{w.lineno}" for w in caught if "synchroniz" in str(w.message)]


def test_to_device_leaves_other_copies_as_they_were():
    rows = torch.arange(5)
    assert to_device(rows, "cpu") is rows
    assert to_device(rows, "meta").device.type == "meta"


@needs_cuda
@pytest.mark.parametrize("pinned", [False, True])
def test_to_device_copies_from_the_host_without_waiting(pinned):
    """The copy is queued behind a long kernel and returns before it ends (a copy that waited
    would find it done); the source may change at once, also when the caller's was pinned."""
    rows = torch.arange(1000)
    rows = rows.pin_memory() if pinned else rows
    torch.cuda.synchronize()
    torch.cuda._sleep(10 ** 9)          # about half a second of GPU cycles
    slept = torch.cuda.Event()
    slept.record()
    on_gpu = to_device(rows, "cuda")
    waited = slept.query()
    rows.zero_()
    assert not waited and torch.equal(on_gpu.cpu(), torch.arange(1000))


@needs_cuda
@pytest.mark.parametrize("own_words", [0.0, 0.25])
def test_an_epoch_and_the_validation_loss_wait_for_the_gpu_once_each(own_words):
    """Also with scheduled sampling (its second epoch feeds the model's own words at 0.25), whose
    draws and masks once waited three times a word."""
    model, config, data = small_setup(device="cuda", **{
        "train.log_every": 10 ** 6, "train.scheduled_sampling": own_words,
        "train.scheduled_sampling_step": own_words, "train.scheduled_sampling_every": 1})
    assert train_module.own_word_probability(config.train, 2) == own_words
    optimizer = train_module.make_optimizer(model, config.train)
    train_module.train_epoch(model, optimizer, data, config, 1, NoWriter(), 0)   # lazy set-up first
    train_module.validation_loss(model, data, config)
    epoch = waits_of(lambda: train_module.train_epoch(model, optimizer, data, config, 2, NoWriter(), 0))
    validation = waits_of(lambda: train_module.validation_loss(model, data, config))
    assert len(epoch) == 1 and len(validation) == 1, (epoch, validation)
