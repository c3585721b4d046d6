"""Tensors of two devices never meet: the CUDA paths checked on a CPU, with the meta device as
the GPU's stand-in and every op checked against CUDA's rules (tests/devices.py).

Data kept on the CPU on purpose (caption lengths, the batch plans drawn from a CPU generator)
meets the model's device only through explicit copies. Meta tensors hold no values: these tests
check devices and shapes, never numbers.
"""
import torch

from bench.workload import subset_data
from loader.captions import CaptionTargets
from loader.corpus import TrainingData
from tests.devices import GPU_STAND_IN, on_the_stand_in_device

DEVICE = GPU_STAND_IN


def caption_targets(device, captions=6, width=5) -> CaptionTargets:
    """Targets as CaptionTargets.to(device) leaves them: tokens and owners there, lengths on the CPU."""
    tokens = torch.randint(4, 9, (captions, width))
    lengths = torch.randint(1, width - 1, (captions,))
    return CaptionTargets(tokens, lengths, torch.arange(captions) % 3).to(device)


def test_subset_data_indexes_each_field_with_rows_on_its_own_device():
    # bench/workload.py moved the rows to the tokens' device, then indexed the CPU lengths with
    # them: "indices should be either on cpu or on the same device as the indexed tensor".
    data = TrainingData(None, None, None, None, caption_targets(DEVICE), caption_targets(DEVICE))
    with on_the_stand_in_device() as meetings:
        subset = subset_data(data, "train_targets", torch.tensor([4, 0, 2]))
    assert meetings.meetings == []
    assert subset.train_targets.lengths.device.type == "cpu" and len(subset.train_targets) == 3
    assert subset.train_targets.tokens.device == DEVICE == subset.train_targets.video_index.device
    assert subset.val_targets is data.val_targets
