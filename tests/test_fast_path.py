"""Speed never changes results: the fast teacher-forced path equals the plain step loop."""
import pytest
import torch

from models.loss import training_loss
from tests.tiny import tiny_clips, tiny_model
from tests.variants import model_variants


@pytest.mark.parametrize("overrides", model_variants())
def test_fast_teacher_forcing_equals_the_step_loop(overrides):
    model, config = tiny_model(**overrides)
    features, mask = tiny_clips()
    inputs = torch.tensor([[1, 4, 5, 6], [1, 6, 4, 0], [1, 5, 5, 5]])
    targets = torch.tensor([[4, 5, 6, 2], [6, 4, 2, 0], [5, 5, 5, 2]])
    fast_logits, fast_alphas = model(features, mask, inputs)
    model.fast_teacher_forcing = False
    plain_logits, plain_alphas = model(features, mask, inputs)
    assert torch.allclose(fast_logits, plain_logits, atol=1e-5)
    assert torch.allclose(fast_alphas, plain_alphas, atol=1e-6)
    config.train.attention_penalty = 0.7
    fast_loss = training_loss(fast_logits, fast_alphas, targets, mask, config.train)[0]
    fast_loss.backward()
    fast_grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    plain_loss = training_loss(plain_logits, plain_alphas, targets, mask, config.train)[0]
    plain_loss.backward()
    plain_grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    assert torch.isclose(fast_loss, plain_loss, atol=1e-5)
    assert all(torch.allclose(f, p, atol=1e-5) for f, p in zip(fast_grads, plain_grads))
