"""train.tf32 and eval.tf32: CUDA's float32 matrix products on TF32 tensor cores. The switch is
CUDA's own flag, which the CPU never reads, so here the tests record the flag at every matrix
product (forward and backward) that training, the validation loss, SCST and decoding dispatch,
and check that the flag is on exactly where the switch asks and restored after."""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import train as train_module
from models.decode_graphs import DecodeGraphs
from models.searches import SEARCHES
from models.searches import decode
from tests.capture_rules import StandInGraphs, eval_settings
from tests.tiny import NoWriter, small_setup, tiny_clips, tiny_model
from training.self_critical import reward_model, scst_epoch
from utils import tf32_products

aten = torch.ops.aten
PRODUCTS = {aten.mm.default, aten.addmm.default, aten.bmm.default, aten.baddbmm.default}


class ProductFlags(TorchDispatchMode):
    """The TF32 flag as each matrix product is dispatched."""

    def __init__(self):
        super().__init__()
        self.flags = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in PRODUCTS:
            self.flags.append(torch.backends.cuda.matmul.allow_tf32)
        return func(*args, **(kwargs or {}))


def flags_of(fn) -> set:
    with ProductFlags() as recorder:
        fn()
    assert len(recorder.flags) > 3, "no products recorded: the test checks nothing"
    assert torch.backends.cuda.matmul.allow_tf32 is False, "the flag was left on"
    return set(recorder.flags)


@pytest.fixture(autouse=True)
def tf32_off():
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = before


def test_the_switch_sets_the_flag_and_restores_it_and_leaves_an_outer_one_alone():
    with tf32_products(True):
        assert torch.backends.cuda.matmul.allow_tf32 is True
    assert torch.backends.cuda.matmul.allow_tf32 is False
    torch.backends.cuda.matmul.allow_tf32 = True       # the benchmark's --tf32
    with tf32_products(False):
        assert torch.backends.cuda.matmul.allow_tf32 is True
    with pytest.raises(KeyError), tf32_products(True):
        raise KeyError
    assert torch.backends.cuda.matmul.allow_tf32 is True


@pytest.mark.parametrize("tf32", [False, True])
def test_training_epoch_and_validation_loss_follow_train_tf32(tf32):
    model, config, data = small_setup(device="cpu", **{"train.tf32": tf32, "eval.tf32": not tf32})
    optimizer = train_module.make_optimizer(model, config.train)
    assert flags_of(lambda: train_module.train_epoch(model, optimizer, data, config, 1,
                                                     NoWriter(), 0)) == {tf32}
    assert flags_of(lambda: train_module.validation_loss(model, data, config)) == {tf32}


@pytest.mark.parametrize("tf32", [False, True])
def test_self_critical_epoch_follows_train_tf32(tf32):
    model, config, data = small_setup(device="cpu", **{"train.tf32": tf32, "eval.tf32": not tf32,
                                                        "train.scst_samples": 2})
    optimizer = train_module.make_optimizer(model, config.train)
    rewards = reward_model(data, config)
    assert flags_of(lambda: scst_epoch(model, optimizer, data, config, rewards, 1,
                                       NoWriter(), 0)) == {tf32}


@pytest.mark.parametrize("tf32", [False, True])
@pytest.mark.parametrize("beam_size", [1, 3])
def test_decoding_follows_eval_tf32(tf32, beam_size):
    model, config = tiny_model(**{"train.tf32": not tf32})
    e = eval_settings(config, beam_size=beam_size, tf32=tf32)
    features, mask = tiny_clips()
    assert flags_of(lambda: decode(model, features, mask, e)) == {tf32}


def test_each_tf32_state_has_its_own_decode_graph():
    """The flag changes the recorded kernels: a graph captured without TF32 must not be
    replayed with it, whether eval.tf32 or a caller (the benchmark) set it."""
    model, config = tiny_model(seed=3)
    stand_in = StandInGraphs()
    graphs = DecodeGraphs(stand_in)
    features, mask = tiny_clips(seed=4)
    captures = []
    for tf32, outer in ((False, False), (True, False), (False, False), (False, True), (True, True)):
        e = eval_settings(config, tf32=tf32)
        with tf32_products(outer), tf32_products(e.tf32):     # as decode() opens it
            graphs(model, features, mask, e, SEARCHES[e.search])
        captures.append(stand_in.captures)
    # TF32 on by eval.tf32, and on by a caller only: two graphs (every eval field is in the key)
    assert captures == [1, 2, 2, 3, 3]


def test_run_names_tell_tf32_runs_apart():
    _, config, _ = small_setup(device="cpu")
    plain = train_module.run_id(config)
    config.train.tf32 = True
    tf32 = train_module.run_id(config)
    assert tf32 != plain and tf32.rsplit("_", 1)[0] == plain.rsplit("_", 1)[0] + "_tf32"


def test_the_benchmarks_tf32_is_for_this_codes_path_alone():
    """python -m bench --tf32 sets train.tf32 and eval.tf32; the baseline stays float32."""
    from bench.stages import build_paths, plain_validation_loss
    _, config, data = small_setup(device="cpu", **{"train.tf32": True, "eval.tf32": True})
    model, paths = build_paths(config, data, torch.device("cpu"), with_baseline=True)
    assert paths["fast"][2].train.tf32 and not paths["plain"][2].train.tf32
    assert flags_of(lambda: plain_validation_loss(model, data, config)) == {False}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_the_switch_changes_the_products_rounding():
    """The flag reaches cuBLAS: float32 products are about 1e-6 from float64, TF32 ones (a
    10-bit mantissa) about 1e-3."""
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(1024, 1024, generator=generator, dtype=torch.float64) for _ in range(2))
    exact = a @ b

    def error():
        product = a.float().cuda() @ b.float().cuda()
        return float(((product.double().cpu() - exact).abs().max() / exact.abs().max()))
    plain = error()
    with tf32_products(True):
        tf32 = error()
    assert plain < 1e-5 < 1e-4 < tf32, (plain, tf32)
