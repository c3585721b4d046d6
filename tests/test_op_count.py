"""bench/op_count.py counts what it says: operators by kind, and a step as a difference of runs."""
import torch

from bench.baseline import committed_beam_search
from bench.op_count import OperatorCount, count, per_step
from models.decoding import beam_search
from tests.tiny import tiny_clips, tiny_model


def test_operators_are_sorted_into_kernels_views_and_host_reads():
    x = torch.arange(6.0)
    with OperatorCount() as counter:
        y = x.view(2, 3).t()               # two views
        z = torch.exp(y) + 1.0             # two kernels
        bool(z.sum() > 0)                  # two kernels and a host read
    assert counter.by_kind() == {"kernels": 4, "views": 2, "allocations": 0, "host_reads": 1}


def test_a_beam_step_dispatches_fewer_kernels_than_the_first_beam_search_and_no_early_sync():
    model, _ = tiny_model()
    features, mask = tiny_clips()

    def step_kinds(search):
        short, long = (count(search, model, features, mask, 3, n, n) for n in (3, 6))
        return per_step(short, long, 3)[0]

    new, first = step_kinds(beam_search), step_kinds(committed_beam_search)
    assert new["kernels"] < 0.6 * first["kernels"], (new, first)
    # min_len = max_len: no <eos> before the last step, so no video can stop and nothing is read
    assert new["host_reads"] == 0 and first["host_reads"] > 0


def test_a_decode_as_a_cuda_graph_leaves_few_operators_around_its_replay():
    """eval.cuda_graphs: what a batch still dispatches eagerly (its copy in, the captions
    rebuilt) is a fraction of the eager decode, with the one host read of the rebuild."""
    import copy
    from bench.op_count import graphed_beam_counts
    model, config = tiny_model()
    features, mask = tiny_clips()
    settings = copy.deepcopy(config.eval)
    settings.beam_size, settings.max_len, settings.min_len = 3, 12, 12
    graphed = graphed_beam_counts(model, features, mask, settings).by_kind()
    eager = count(beam_search, model, features, mask, 3, 12, 12).by_kind()
    assert graphed["host_reads"] == 1 and graphed["kernels"] < eager["kernels"] / 3, (graphed, eager)
