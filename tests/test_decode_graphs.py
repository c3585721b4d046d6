"""eval.cuda_graphs (models/decode_graphs.py), checked on the CPU where CUDA graphs cannot run:
- DecodeGraphs with a stand-in for torch.cuda's graphs gives the eager search's captions: the
  stand-in's capture leaves garbage in the outputs, as a real capture does, and its replay runs
  the recorded decode on the static buffers, so a batch not copied in, weights read at capture
  time, or outputs read before a replay all show;
- the recorded decode neither syncs with the CPU nor makes shapes from values nor copies from
  the host (tests/capture_rules.py);
- one capture per batch shape, anew when the weights move, and eager decoding after a failure.
On a GPU (SALSTM_TEST_DEVICE=cuda) the real graphs are compared with the eager search.
"""
import copy

import pytest
import torch

from loader.vocabulary import EOS_ID
from models import decode_graphs
from models.decode_graphs import DecodeGraphs, all_steps
from models.searches import decode
from models.searches import SEARCHES
from tests.capture_rules import StandInGraphs, SyncOrValueShapes, eval_settings, tensors_of  # noqa: F401
from tests.devices import GPU_STAND_IN, on_the_stand_in_device
from tests.tiny import tiny_clips, tiny_model
from tests.variants import attention_variants, settings_id
from utils import autocast_bf16


class FailingGraphs(StandInGraphs):
    def capture(self, fn):
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing\nmore")


def decoded(graphs, model, features, mask, e):
    """graphs' decode as decode() runs it on CUDA: under eval.autocast_bf16's autocast, no cache."""
    with autocast_bf16(features.device.type, e.autocast_bf16, cache=False):
        return graphs(model, features, mask, e, SEARCHES[e.search])


def assert_same_captions(graphed, eager):
    assert torch.equal(graphed.tokens, eager.tokens) and torch.equal(graphed.lengths, eager.lengths)
    torch.testing.assert_close(graphed.log_probs, eager.log_probs)
    torch.testing.assert_close(graphed.attention, eager.attention)


def batches(seed: int):
    """Five batches: four of 3 clips (one shape), then one of 2 (another)."""
    return [tiny_clips(batch=3 if i < 4 else 2, seed=seed * 10 + i) for i in range(5)]


GRAPHABLE = [{"search": name} for name, search in sorted(SEARCHES.items()) if search.graphable]


@pytest.mark.parametrize("attention", attention_variants())
@pytest.mark.parametrize("settings", GRAPHABLE + [{"beam_size": 1}, {"length_penalty": 0.7, "min_len": 2},
                                                  {"beam_size": 4, "autocast_bf16": True}], ids=settings_id)
def test_graphed_decoding_gives_the_eager_captions(settings, attention):
    model, config = tiny_model(seed=3, **attention)
    e = eval_settings(config, **settings)
    stand_in = StandInGraphs()
    graphs = DecodeGraphs(stand_in)
    lengths = set()
    # <eos> unlikely to likely: captions of many lengths, the extremes forced by the bias whatever
    # the attention (the steps after an end must not matter)
    for seed, eos_bias in enumerate((-50.0, -1.0, 0.0, 0.5, 1.0, 2.0, 50.0)):
        with torch.no_grad():
            model.decoder.readout.bias[EOS_ID] = eos_bias
        for features, mask in batches(seed):
            eager = decode(model, features, mask, e)
            assert_same_captions(decoded(graphs, model, features, mask, e), eager)
            lengths.update(eager.lengths.tolist())
    assert stand_in.captures == 2                 # one per batch shape, over all 35 batches
    # captions of several lengths, some ended early: the steps after an end must not matter
    assert len(lengths) > 1 and min(lengths) <= e.max_len, f"captions of lengths {lengths} only"


def test_a_replay_reads_the_weights_as_they_are_now():
    """Training changes the weights in place between validations: a replay must decode with the
    new ones (nothing of the weights taken outside the graph at capture time)."""
    model, config = tiny_model(seed=3)
    e = eval_settings(config)
    graphs = DecodeGraphs(StandInGraphs())
    features, mask = tiny_clips(seed=4)
    decoded(graphs, model, features, mask, e)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    changed = decode(model, features, mask, e)
    assert_same_captions(decoded(graphs, model, features, mask, e), changed)


def decoded_once():
    """A tiny model's batch decoded once through stand-in graphs: (model, e, stand-in, graphs,
    features, mask)."""
    model, config = tiny_model(seed=3)
    e = eval_settings(config)
    stand_in = StandInGraphs()
    graphs = DecodeGraphs(stand_in)
    features, mask = tiny_clips(seed=4)
    decoded(graphs, model, features, mask, e)
    return model, e, stand_in, graphs, features, mask


def test_weights_moved_elsewhere_are_captured_anew():
    model, e, stand_in, graphs, features, mask = decoded_once()
    decoded(graphs, model, features, mask, e)
    assert stand_in.captures == 1
    model.load_state_dict({k: v.clone() for k, v in model.state_dict().items()}, assign=True)
    decoded(graphs, model, features, mask, e)
    assert stand_in.captures == 2


def test_a_failed_capture_leaves_decoding_to_the_eager_search(capsys, monkeypatch):
    model, config = tiny_model(seed=5)
    e = eval_settings(config)
    graphs = DecodeGraphs(FailingGraphs())
    recorded = []
    all_steps_of = decode_graphs.all_steps
    monkeypatch.setattr(decode_graphs, "all_steps", lambda *args: recorded.append(1) or all_steps_of(*args))
    for features, mask in batches(1):
        assert_same_captions(decoded(graphs, model, features, mask, e), decode(model, features, mask, e))
    # only the first batch ran every step (the warm-up before the capture); the others stop early
    assert len(recorded) == 1
    warnings = capsys.readouterr().err.splitlines()
    assert warnings == ["warning: eval.cuda_graphs: the decode of a batch of 3 clips could not be "
                        "captured (CUDA error: operation not permitted when stream is capturing); "
                        "decoding goes on without CUDA graphs"]


@pytest.mark.parametrize("attention", attention_variants())
@pytest.mark.parametrize("settings", GRAPHABLE + [{"beam_size": 1}, {"length_penalty": 0.7},
                                                  {"autocast_bf16": True}], ids=settings_id)
@pytest.mark.parametrize("device", ["cpu", GPU_STAND_IN], ids=["cpu", "gpu_stand_in"])
def test_the_recorded_decode_neither_syncs_nor_makes_shapes_from_values(settings, device, attention):
    """On the CPU for syncs and shapes from values, on the meta stand-in also for copies from
    the host (which a CPU-to-CPU copy cannot show)."""
    model, config = tiny_model(seed=1, **attention)
    model.to(device)
    features, mask = (t.to(device) for t in tiny_clips())
    e = eval_settings(config, **settings)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=e.autocast_bf16, cache_enabled=False):
        with SyncOrValueShapes() as mode:
            all_steps(model, features, mask, e, SEARCHES[e.search])
    assert mode.found == []


def test_every_eval_field_is_part_of_a_graphs_key():
    """A graph recorded under other eval settings is never replayed: changing any eval field,
    one added later included, captures anew."""
    import dataclasses
    model, e, stand_in, graphs, features, mask = decoded_once()
    fields = [f.name for f in dataclasses.fields(e)]
    for field in fields:
        other = copy.deepcopy(e)
        value = getattr(other, field)
        changed = {bool: lambda v: not v, int: lambda v: v + 1, float: lambda v: v + 0.5,
                   str: lambda v: v + "x", list: lambda v: v + ["x"]}[type(value)](value)
        setattr(other, field, changed)
        assert decode_graphs.eval_fields(other) != decode_graphs.eval_fields(e), field
    assert stand_in.captures == 1


def test_decode_takes_the_graphs_on_cuda_only(monkeypatch):
    model, config = tiny_model()
    e = eval_settings(config, cuda_graphs=True)
    features, mask = tiny_clips()
    called = []
    monkeypatch.setattr(decode_graphs, "graphed_decode", lambda *args: called.append(args))
    decode(model, features, mask, e)
    assert called == []
    model.to(GPU_STAND_IN)
    with on_the_stand_in_device():       # meta is not CUDA either (it answers the host's reads)
        decode(model, features.to(GPU_STAND_IN), mask.to(GPU_STAND_IN), e)
    assert called == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("settings", [{}, {"beam_size": 1}, {"length_penalty": 0.7, "min_len": 2},
                                      {"autocast_bf16": True}, {"tf32": True}], ids=settings_id)
def test_cuda_graphs_decode_as_the_eager_search_on_the_gpu(settings):
    model, config = tiny_model(seed=2)
    model.cuda()
    e = eval_settings(config, **settings)
    graphed = eval_settings(config, cuda_graphs=True, **settings)
    for features, mask in batches(0) + batches(1):
        features, mask = features.cuda(), mask.cuda()
        eager = decode(model, features, mask, e)
        assert_same_captions(decode(model, features, mask, graphed), eager)
    assert len(decode_graphs._BY_MODEL[model].shapes) == 2
