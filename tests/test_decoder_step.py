"""The model's step (models/sa_lstm.py, the equations written once) against the plain step
(tests/reference.py: nn.LSTMCell's own forward, the attention sum one map at a time),
for every registered attention and with one row or several rows per clip."""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tests.reference import reference_step, repeated
from tests.tiny import tiny_clips, tiny_model
from tests.variants import model_variants


@pytest.mark.parametrize("rows_per_clip", [1, 2])
@pytest.mark.parametrize("overrides", model_variants())
def test_step_equals_the_step_as_first_written(overrides, rows_per_clip):
    """rows_per_clip 2: the step that projects each clip's frames once for its rows (beams,
    samples) against the first step on clips repeated for each row."""
    model, _ = tiny_model(**overrides)
    features, mask = tiny_clips()
    clips = model.encode(features, mask, rows_per_clip=rows_per_clip)
    generator = torch.Generator().manual_seed(3)
    rows = 3 * rows_per_clip
    state = tuple(torch.randn(rows, 16, generator=generator) for _ in range(2))   # not h_0: any state
    words = torch.tensor([1, 4, 6, 5, 3, 4][:rows])
    logits, (hidden, cell), alpha = model.step(words, state, clips, rows_per_clip)
    ref_logits, (ref_hidden, ref_cell), ref_alpha = reference_step(
        model, words, state, repeated(model.encode(features, mask), rows_per_clip))
    assert torch.allclose(logits, ref_logits, atol=1e-5)
    assert torch.allclose(hidden, ref_hidden, atol=1e-6) and torch.allclose(cell, ref_cell, atol=1e-6)
    assert torch.allclose(alpha, ref_alpha, atol=1e-6)
    assert float(alpha[:rows_per_clip, 2:].detach().abs().max()) == 0.0   # clip 0's padded frames

    grads = torch.autograd.grad(logits.square().sum(), list(model.parameters()), allow_unused=True,
                                retain_graph=True)
    ref_grads = torch.autograd.grad(ref_logits.square().sum(), list(model.parameters()), allow_unused=True)
    for grad, ref in zip(grads, ref_grads):
        assert (grad is None) == (ref is None)
        assert grad is None or torch.allclose(grad, ref, atol=1e-5)


# A Demo checkpoint's parameter names: soft attention's, and mean pooling's without the attention's.
SAVED_NAMES = [
    "encoder.init_h.weight", "encoder.init_h.bias", "encoder.init_c.weight", "encoder.init_c.bias",
    "decoder.embedding.weight", "decoder.attention.key.weight", "decoder.attention.key.bias",
    "decoder.attention.query.weight", "decoder.attention.score.weight", "decoder.selector.weight",
    "decoder.selector.bias", "decoder.lstm.weight_ih", "decoder.lstm.weight_hh", "decoder.lstm.bias_ih",
    "decoder.lstm.bias_hh", "decoder.out_hidden.weight", "decoder.out_hidden.bias",
    "decoder.out_context.weight", "decoder.readout.weight", "decoder.readout.bias"]


@pytest.mark.parametrize("attention", ["soft", "mean"])
def test_format_1_checkpoints_load_with_the_fields_this_version_does_not_read(attention):
    """A format-1 config holds model.use_attention (false: mean pooling), model.fused_cell and
    train.fast_teacher_forcing: it builds the model it described, with its parameters' names."""
    import config as config_module
    from models.sa_lstm import build_model
    model, config = tiny_model(**{"model.attention": attention})
    saved = config.to_dict()
    saved["model"].update(attention="soft", use_attention=attention == "soft", fused_cell=True)
    saved["train"]["fast_teacher_forcing"] = False
    rebuilt = build_model(config_module.Config.from_dict(saved), 7, 5)
    names = [n for n in SAVED_NAMES if attention == "soft" or ".attention." not in n]
    assert list(rebuilt.state_dict()) == names
    rebuilt.load_state_dict(model.state_dict())
    features, mask = tiny_clips()
    inputs = torch.tensor([[1, 4, 5], [1, 6, 4], [1, 5, 5]])
    assert torch.equal(rebuilt.eval()(features, mask, inputs)[0], model(features, mask, inputs)[0])


class FusedCells(TorchDispatchMode):
    """Counts the fused LSTM cell's kernel calls: "with it" must really have taken it."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls += func is torch.ops.aten._thnn_fused_lstm_cell.default
        return func(*args, **(kwargs or {}))


def with_and_without_the_fused_cell(decoder, run) -> dict:
    """{fused: run()} with the decoder's fused CUDA cell (build_model's fused_cell) switched on and off."""
    results = {}
    for fused in (True, False):
        decoder.fused_cell = fused
        with FusedCells() as cells:
            results[fused] = run()
        assert (cells.calls > 0) == fused, cells.calls
    return results


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="the fused LSTM cell is CUDA's kernel")


@needs_cuda
def test_fused_cuda_lstm_cell_equals_the_update_as_written():
    model, _ = tiny_model()
    decoder = model.decoder
    generator = torch.Generator().manual_seed(0)
    word, context = (torch.randn(5, 4 * 16, generator=generator).cuda().requires_grad_()
                     for _ in range(2))
    # the hidden gates as read_hidden gives them: columns of a wider product (strided, not contiguous)
    wider = torch.randn(5, 4 * 16 + 9, generator=generator).cuda().requires_grad_()
    hidden = wider[:, :4 * 16]
    cell = torch.randn(5, 16, generator=generator).cuda().requires_grad_()

    def update():
        h, c = decoder.lstm_update(word, hidden, context, cell)
        return (h, c, *torch.autograd.grad(h.square().sum() + c.sin().sum(), [word, wider, context, cell]))
    results = with_and_without_the_fused_cell(decoder, update)
    for a, b in zip(results[True], results[False]):
        assert torch.allclose(a, b, atol=1e-5)


@needs_cuda
def test_the_model_on_cuda_computes_alike_with_and_without_the_fused_cell():
    """The whole model on the GPU, where every LSTM update takes the fused kernel with the gates
    as teacher forcing and beam search make them: the same loss, gradients and captions."""
    from models.searches import decode
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
    results = with_and_without_the_fused_cell(model.decoder, loss_gradients_captions)
    (loss, grads, decoded), (ref_loss, ref_grads, ref_decoded) = results[True], results[False]
    torch.testing.assert_close(loss, ref_loss)
    for grad, ref in zip(grads, ref_grads):
        assert (grad is None) == (ref is None)
        assert grad is None or torch.allclose(grad, ref, atol=1e-5)
    assert torch.equal(decoded.tokens, ref_decoded.tokens)
