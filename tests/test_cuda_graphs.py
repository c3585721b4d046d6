"""train.cuda_graphs (training/steps.py), checked on the CPU where CUDA graphs cannot run:
- GraphedSteps with a stand-in for torch.cuda's graphs (capture keeps the step and runs nothing,
  replay runs it) trains exactly as the eager steps: the static buffers, the slices each shape
  reads, the capture per shape and anew after a learning-rate change;
- the captured step neither syncs with the CPU nor makes a shape from values, which capture
  forbids (SyncOrValueShapes records such operators);
- the graphed path keeps every tensor on the model's device (the meta stand-in of tests/devices.py).
On a GPU (SALSTM_TEST_DEVICE=cuda) the real graphs are compared with eager.
"""
import copy

import pytest
import torch

import config as config_module
from models import checkpoints
import train as train_module
from distributed import Ranks
from loader.batches import caption_batch_order, make_caption_batch
from training.steps import EagerSteps, GraphedSteps, check_cuda_graphs_config
from training.update import training_update
from tests.capture_rules import SyncOrValueShapes
from tests.devices import on_the_stand_in_device
from tests.variants import attention_variants, settings_id
from tests.tiny import NoWriter, small_setup
from utils import CudaGraphs

class StandInGraphs:
    """torch.cuda's graphs as far as GraphedSteps sees them: capture runs nothing, and a replay
    runs the step with the learning rates of its capture (a graph's kernels hold them)."""

    def __init__(self, optimizer):
        self.optimizer, self.captured = optimizer, []

    @staticmethod
    def warm_up(step):
        return step()

    def capture(self, step):
        captured_lrs = [group["lr"] for group in self.optimizer.param_groups]
        self.captured.append(step)

        def replay():
            now = [group["lr"] for group in self.optimizer.param_groups]
            for group, lr in zip(self.optimizer.param_groups, captured_lrs):
                group["lr"] = lr
            step()
            for group, lr in zip(self.optimizer.param_groups, now):
                group["lr"] = lr
        return None, replay


def cpu_setup(**overrides):
    overrides = {"model.dropout": 0.3, "train.attention_penalty": 0.5, **overrides}
    return small_setup(device="cpu", **overrides)


EPOCHS = 3


def train_epochs(model, optimizer, data, config, steps) -> list:
    """EPOCHS epochs, the learning rate halved after the first (as the scheduler would)."""
    losses = []
    for epoch in range(1, EPOCHS + 1):
        losses.append(train_module.train_epoch(model, optimizer, data, config, epoch, NoWriter(), 0,
                                               steps=steps)[0])
        if epoch == 1:
            for group in optimizer.param_groups:
                group["lr"] *= 0.5
    return losses


@pytest.mark.parametrize("overrides", [{}, {"train.loss_reduction": "token_mean",
                                        "train.label_smoothing": 0.1}], ids=settings_id)
def test_graphed_steps_train_exactly_as_the_eager_steps(overrides):
    model, config, data = cpu_setup(**overrides)
    graphed_model = copy.deepcopy(model)
    eager_optimizer = train_module.make_optimizer(model, config.train)
    graphed_optimizer = train_module.make_optimizer(graphed_model, config.train)
    graphs = StandInGraphs(graphed_optimizer)
    torch.manual_seed(5)
    eager = train_epochs(model, eager_optimizer, data, config,
                             EagerSteps(model, eager_optimizer, config.train))
    torch.manual_seed(5)
    graphed = train_epochs(graphed_model, graphed_optimizer, data, config,
                               GraphedSteps(graphed_model, graphed_optimizer, data, config, graphs))
    assert graphed == eager
    for a, b in zip(model.parameters(), graphed_model.parameters()):
        assert torch.equal(a, b)
    # each batch trained once: capture ran nothing
    steps = {float(state["step"]) for state in graphed_optimizer.state.values()}
    batches = EPOCHS * -(-len(data.train_targets) // config.loader.batch_size)
    assert steps == {float(batches)}
    # one capture per shape, and again after the learning rate changed
    shapes = [{tuple(make_caption_batch(data.train, data.train_targets, rows).inputs.shape)
               for rows in epoch_batches(data, config, epoch)} for epoch in range(1, EPOCHS + 1)]
    assert len(graphs.captured) == len(shapes[0]) + len(set.union(*shapes[1:])) < batches


class FailingGraphs(StandInGraphs):
    def capture(self, step):
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing\nmore")


def test_a_failed_capture_leaves_the_run_to_the_eager_steps(capsys):
    model, config, data = cpu_setup()
    graphed_model = copy.deepcopy(model)
    eager_optimizer = train_module.make_optimizer(model, config.train)
    graphed_optimizer = train_module.make_optimizer(graphed_model, config.train)
    torch.manual_seed(5)
    eager = train_epochs(model, eager_optimizer, data, config,
                         EagerSteps(model, eager_optimizer, config.train))
    torch.manual_seed(5)
    steps = GraphedSteps(graphed_model, graphed_optimizer, data, config, FailingGraphs(graphed_optimizer))
    assert train_epochs(graphed_model, graphed_optimizer, data, config, steps) == eager
    assert steps.failure == "CUDA error: operation not permitted when stream is capturing"
    assert capsys.readouterr().err.count("training goes on without CUDA graphs") == 1


def epoch_batches(data, config, epoch: int) -> list:
    """The batches of train_epoch's epoch."""
    generator = torch.Generator().manual_seed(config.train.seed * 1000 + epoch)
    return caption_batch_order(data.train_targets, config.loader.batch_size, generator,
                               config.loader.bucket_by_length)


def test_graphed_steps_read_each_shape_from_leading_slices_of_one_buffer():
    model, config, data = cpu_setup()
    optimizer = train_module.make_optimizer(model, config.train)
    steps = GraphedSteps(model, optimizer, data, config, StandInGraphs(optimizer))
    rows = torch.tensor([0, 1])
    batch = make_caption_batch(data.train, data.train_targets, rows)
    steps(batch, Ranks().share_of(rows, data.train_targets.lengths, "caption_sum"))
    length = batch.inputs.shape[1]
    assert torch.equal(steps.features[:2], batch.features)
    assert torch.equal(steps.tokens[:2, :length], batch.inputs)
    assert torch.equal(steps.tokens[:2, 1:length + 1], batch.targets)
    assert steps.features.shape[0] == config.loader.batch_size
    assert list(steps.replays) == [(2, length)]


MODEL_VARIANTS = [
    {"train.attention_penalty": 0.7, "train.label_smoothing": 0.1, "train.loss_reduction": "token_mean"},
    *attention_variants(),
]
STEP_VARIANTS = MODEL_VARIANTS + [
    {"train.autocast_bf16": True},
    {"train.optimizer": "adadelta", "train.clip_norm": 0.0},
]


@pytest.mark.parametrize("overrides", STEP_VARIANTS, ids=settings_id)
def test_the_captured_step_neither_syncs_nor_makes_shapes_from_values(overrides):
    model, config, data = cpu_setup(**overrides)
    optimizer = train_module.make_optimizer(model, config.train)
    batch = make_caption_batch(data.train, data.train_targets, torch.tensor([0, 1, 2]))
    training_update(model, optimizer, batch, config.train, for_cuda_graph=True)   # state made eagerly
    with SyncOrValueShapes() as mode:
        training_update(model, optimizer, batch, config.train, for_cuda_graph=True)
    assert mode.found == []


@pytest.mark.parametrize("overrides", MODEL_VARIANTS, ids=settings_id)
def test_the_captured_step_copies_nothing_from_the_host(overrides):
    # on the meta stand-in; with SGD, whose update is plain tensor ops (the plain Adam that meta
    # gets keeps its step count on the host, which CUDA's capturable Adam does not)
    model, config, data = small_setup(**overrides)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batch = make_caption_batch(data.train, data.train_targets, torch.tensor([0, 1, 2]))
    with SyncOrValueShapes() as mode:
        training_update(model, optimizer, batch, config.train, for_cuda_graph=True)
    assert mode.found == []


def test_the_capture_check_sees_syncs_shapes_from_values_and_host_copies():
    with SyncOrValueShapes() as mode:
        x = torch.arange(4.0)
        float(x.sum())
        x[x > 1].sum()
        torch.ones(2, device="meta").copy_(torch.ones(2))
        torch.ones(2).to("meta")
        torch.tensor([0, 1], device="meta")
        torch.ones(2, device="meta").new_tensor([3.0])
        torch.tensor([0, 1]), torch.ones(2).new_tensor([3.0])     # on the host: no copy
    assert mode.found == ["aten._local_scalar_dense.default", "aten.index.Tensor with a boolean mask",
                          "aten.copy_.default from the host", "aten._to_copy.default from the host",
                          "tensor from the host", "new_tensor from the host"]


def test_the_graphed_path_keeps_tensors_on_the_device():
    model, config, data = small_setup()
    optimizer = train_module.make_optimizer(model, config.train)
    with on_the_stand_in_device() as meetings:
        steps = GraphedSteps(model, optimizer, data, config, StandInGraphs(optimizer))
        train_module.train_epoch(model, optimizer, data, config, 1, NoWriter(), 0, steps=steps)
    assert meetings.meetings == []
    assert steps.features.device == data.train.features.device


def test_cuda_graphs_refuses_what_it_cannot_capture():
    config = config_module.build("Demo", **{"train.cuda_graphs": True})
    with pytest.raises(config_module.ConfigError, match="needs a CUDA device"):
        check_cuda_graphs_config(config, torch.device("cpu"), 1)
    with pytest.raises(config_module.ConfigError, match="torchrun"):
        check_cuda_graphs_config(config, torch.device("cuda"), 2)
    config.train.scheduled_sampling = 0.1
    with pytest.raises(config_module.ConfigError, match="scheduled sampling"):
        check_cuda_graphs_config(config, torch.device("cuda"), 1)
    config.train.cuda_graphs = False
    check_cuda_graphs_config(config, torch.device("cpu"), 2)


def test_a_resumed_optimizer_keeps_its_own_implementation_choices():
    model, config, data = cpu_setup()
    saved = train_module.make_optimizer(model, config.train)       # fused on the CPU
    train_module.train_epoch(model, saved, data, config, 1, NoWriter(), 0)
    plain = torch.optim.Adam(model.parameters(), lr=1.0, amsgrad=True, foreach=False)
    train_module.load_optimizer_state(plain, saved.state_dict())
    assert plain.param_groups[0]["fused"] is not True and plain.param_groups[0]["foreach"] is False
    assert plain.param_groups[0]["lr"] == config.train.lr                 # the saved hyperparameters
    state = next(iter(plain.state.values()))
    assert state["step"].dtype == torch.float32 and float(state["step"]) > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")
@pytest.mark.parametrize("bf16, tf32", [(False, False), (True, False), (False, True)])
def test_cuda_graphs_train_as_the_eager_steps_on_the_gpu(bf16, tf32):
    model, config, data = small_setup(device="cuda", **{
        "model.dropout": 0.0, "train.attention_penalty": 0.5, "train.cuda_graphs": True,
        "train.autocast_bf16": bf16, "train.tf32": tf32})
    graphed_model = copy.deepcopy(model)
    eager_optimizer = train_module.make_optimizer(model, config.train)
    graphed_optimizer = train_module.make_optimizer(graphed_model, config.train)
    eager = train_epochs(model, eager_optimizer, data, config,
                         EagerSteps(model, eager_optimizer, config.train))
    graphed = train_epochs(graphed_model, graphed_optimizer, data, config,
                           GraphedSteps(graphed_model, graphed_optimizer, data, config,
                                        CudaGraphs(data.train.features.device)))
    # the same kernels; bf16's and TF32's coarse rounding lets a differently chosen product
    # algorithm show
    tolerance = 1e-2 if bf16 or tf32 else 1e-4
    assert graphed == pytest.approx(eager, rel=tolerance)
    for a, b in zip(model.parameters(), graphed_model.parameters()):
        torch.testing.assert_close(a, b, rtol=tolerance, atol=tolerance / 10)


class StandInGraphsOfOneRate:
    """The stand-in where the learning rate never changes (its replay need not restore one)."""

    def __init__(self, device):
        self.device = device

    warm_up = staticmethod(StandInGraphs.warm_up)

    @staticmethod
    def capture(step):
        return None, step


def test_train_py_keeps_the_graphs_across_epochs_and_trains_as_eager(tmp_path_factory, tmp_path, monkeypatch):
    """train.py with train.cuda_graphs, the graphs stood in for on the CPU: the same run as eager
    (every epoch's losses), and one steps object for the whole run, so each shape is captured
    once, not once an epoch."""
    from training import steps as cuda_graphs, steps
    from tests.small_demo import build_small_demo, single_thread, small_config
    captured = []
    make_step = cuda_graphs.GraphedSteps._step

    def recorded_step(self, rows, length):
        captured.append((rows, length))
        return make_step(self, rows, length)

    monkeypatch.setattr(cuda_graphs.GraphedSteps, "_step", recorded_step)
    monkeypatch.setattr(steps, "CudaGraphs", StandInGraphsOfOneRate)
    monkeypatch.setattr(train_module, "check_cuda_graphs_config", lambda *args: None)
    small = {"model.hidden_size": 16, "model.embedding_size": 8, "model.attention_size": 8,
             "loader.batch_size": 20, "eval.beam_size": 2, "eval.max_len": 8, "train.epochs": 3,
             "train.device": "cpu", "eval.metrics": [], "train.select_metric": "loss",
             "train.lr_patience": 100}                 # the learning rate stays: no capture anew
    root = build_small_demo(tmp_path_factory, (20, 4, 4))
    histories = {}
    with single_thread():
        for graphs in (False, True):
            config = small_config(small, root, tmp_path / str(graphs), **{"train.cuda_graphs": graphs})
            train_module.train(config)
            last = checkpoints.load(str(tmp_path / str(graphs) / train_module.run_id(config) / "last.pt"))
            histories[graphs] = [(h["train_loss"], h["val_loss"]) for h in last["progress"]["history"]]
    assert histories[True] == histories[False] and len(histories[True]) == 3
    assert captured and len(set(captured)) == len(captured)
