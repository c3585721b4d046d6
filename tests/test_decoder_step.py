"""The model's step (models/decoder.py, the equations written once) against an independent
writing of it (bench/baseline.py: nn.LSTMCell's own forward, the attention sum one map at a time)."""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from bench.baseline import committed_step
from tests.tiny import tiny_clips, tiny_model

VARIANTS = [{}, {"model.use_attention": False}, {"model.use_selector": False},
            {"model.deep_output": False}, {"model.frame_projection": 6, "model.frame_positions": True},
            {"model.init_from_mean": False}]


@pytest.mark.parametrize("overrides", VARIANTS)
def test_step_equals_the_step_as_first_written(overrides):
    model, _ = tiny_model(**overrides)
    features, mask = tiny_clips()
    clips = model.encode(features, mask)
    generator = torch.Generator().manual_seed(3)
    state = tuple(torch.randn(3, 16, generator=generator) for _ in range(2))   # not h_0: any state
    words = torch.tensor([1, 4, 6])
    logits, (hidden, cell), alpha = model.step(words, state, clips)
    ref_logits, (ref_hidden, ref_cell), ref_alpha = committed_step(model, words, state, clips)
    assert torch.allclose(logits, ref_logits, atol=1e-5)
    assert torch.allclose(hidden, ref_hidden, atol=1e-6) and torch.allclose(cell, ref_cell, atol=1e-6)
    assert torch.allclose(alpha, ref_alpha, atol=1e-6)
    assert float(alpha[0, 2:].detach().abs().max()) == 0.0          # clip 0's padded frames

    grads = torch.autograd.grad(logits.square().sum(), list(model.parameters()), allow_unused=True,
                                retain_graph=True)           # the clips are shared by both
    ref_grads = torch.autograd.grad(ref_logits.square().sum(), list(model.parameters()), allow_unused=True)
    for grad, ref in zip(grads, ref_grads):
        assert (grad is None) == (ref is None)
        assert grad is None or torch.allclose(grad, ref, atol=1e-5)


def test_checkpoint_parameter_names_are_those_of_nn_lstm_cell_and_the_attention_modules():
    """Checkpoints written before the equations moved load into the model as it is now."""
    model, _ = tiny_model()
    names = set(model.state_dict())
    assert {"decoder.lstm.weight_ih", "decoder.lstm.weight_hh", "decoder.lstm.bias_ih",
            "decoder.lstm.bias_hh", "decoder.attention.key.weight", "decoder.attention.query.weight",
            "decoder.attention.score.weight", "decoder.selector.weight", "decoder.out_context.weight",
            "decoder.readout.weight", "decoder.embedding.weight"} <= names


class FusedCells(TorchDispatchMode):
    """Counts the fused LSTM cell's kernel calls: "with it" must really have taken it."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls += func is torch.ops.aten._thnn_fused_lstm_cell.default
        return func(*args, **(kwargs or {}))


def with_and_without_the_fused_cell(monkeypatch, run) -> dict:
    """{fused: run()} with models/decoder.py's fused CUDA cell switched on and off."""
    import models.decoder as decoder_module
    results = {}
    for fused in (True, False):
        monkeypatch.setattr(decoder_module, "FUSED_CELL_ON_CUDA", fused)
        with FusedCells() as cells:
            results[fused] = run()
        assert (cells.calls > 0) == fused, cells.calls
    return results


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="the fused LSTM cell is CUDA's kernel")


@needs_cuda
def test_fused_cuda_lstm_cell_equals_the_update_as_written(monkeypatch):
    from models.decoder import DecoderStep
    generator = torch.Generator().manual_seed(0)
    word, context = (torch.randn(5, 4 * 16, generator=generator).cuda().requires_grad_()
                     for _ in range(2))
    # the hidden gates as read_hidden gives them: columns of a wider product (strided, not contiguous)
    wider = torch.randn(5, 4 * 16 + 9, generator=generator).cuda().requires_grad_()
    hidden = wider[:, :4 * 16]
    cell = torch.randn(5, 16, generator=generator).cuda().requires_grad_()

    def update():
        h, c = DecoderStep.lstm_update(word, hidden, context, cell)
        return (h, c, *torch.autograd.grad(h.square().sum() + c.sin().sum(), [word, wider, context, cell]))
    results = with_and_without_the_fused_cell(monkeypatch, update)
    for a, b in zip(results[True], results[False]):
        assert torch.allclose(a, b, atol=1e-5)


@needs_cuda
def test_the_model_on_cuda_computes_alike_with_and_without_the_fused_cell(monkeypatch):
    """The whole model on the GPU, where every LSTM update takes the fused kernel with the gates
    as teacher forcing and beam search make them: the same loss, gradients and captions."""
    from models.decoding import decode
    from models.loss import caption_nll
    model, config = tiny_model()
    model = model.cuda()
    features, mask = (t.cuda() for t in tiny_clips())
    words = torch.randint(3, 7, (3, 6), generator=torch.Generator().manual_seed(5)).cuda()
    config.eval.beam_size = 3

    def loss_gradients_captions():
        logits, _ = model(features, mask, words[:, :-1])
        loss = caption_nll(logits, words[:, 1:], "caption_sum")
        grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
        with torch.no_grad():
            return loss, grads, decode(model, features, mask, config.eval)
    results = with_and_without_the_fused_cell(monkeypatch, loss_gradients_captions)
    (loss, grads, decoded), (ref_loss, ref_grads, ref_decoded) = results[True], results[False]
    torch.testing.assert_close(loss, ref_loss)
    for grad, ref in zip(grads, ref_grads):
        assert (grad is None) == (ref is None)
        assert grad is None or torch.allclose(grad, ref, atol=1e-5)
    assert torch.equal(decoded.tokens, ref_decoded.tokens)
