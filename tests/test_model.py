import torch

from models.loss import attention_penalty, caption_nll
from tests.tiny import tiny_clips, tiny_model


def test_teacher_forcing_shapes_and_masked_frames_get_no_attention():
    model, _ = tiny_model()
    features, mask = tiny_clips()
    inputs = torch.tensor([[1, 4, 5], [1, 6, 4], [1, 5, 5]])
    logits, alphas = model(features, mask, inputs)
    assert logits.shape == (3, 3, 7) and alphas.shape == (3, 3, 4)
    assert float(alphas[0, :, 2:].detach().abs().max()) == 0.0
    assert torch.allclose(alphas.sum(-1), torch.ones(3, 3), atol=1e-5)


def test_padding_values_do_not_change_the_output():
    model, _ = tiny_model()
    features, mask = tiny_clips()
    noisy = features.clone()
    noisy[0, 2:] = 1000.0            # garbage in the padded frames of clip 0
    inputs = torch.tensor([[1, 4, 5]] * 3)
    assert torch.allclose(model(features, mask, inputs)[0], model(noisy, mask, inputs)[0], atol=1e-5)


def test_attention_and_mean_pooling_are_blind_to_frame_order():
    for attention in ("soft", "mean"):
        model, _ = tiny_model(**{"model.attention": attention})
        features, mask = tiny_clips()
        mask[:] = True
        inputs = torch.tensor([[1, 4, 5]] * 3)
        shuffled = features[:, [2, 0, 3, 1]]
        assert torch.allclose(model(features, mask, inputs)[0], model(shuffled, mask, inputs)[0], atol=1e-5)


def test_mean_pooling_weighs_real_frames_equally():
    model, _ = tiny_model(**{"model.attention": "mean"})
    features, mask = tiny_clips()
    _, alphas = model(features, mask, torch.tensor([[1, 4]] * 3))
    assert torch.allclose(alphas[0, 0], torch.tensor([0.5, 0.5, 0.0, 0.0]))
    assert torch.allclose(alphas[1, 0], torch.full((4,), 0.25))


def test_dropout_really_applies_in_training_mode():
    model, _ = tiny_model(**{"model.dropout": 0.5})
    features, mask = tiny_clips()
    inputs = torch.tensor([[1, 4, 5]] * 3)
    model.train()
    first, second = model(features, mask, inputs)[0], model(features, mask, inputs)[0]
    assert not torch.allclose(first, second)
    model.eval()
    assert torch.allclose(model(features, mask, inputs)[0], model(features, mask, inputs)[0])


def test_caption_nll_reductions_and_attention_penalty():
    logits = torch.zeros(2, 3, 5)                      # uniform: each token costs log 5
    targets = torch.tensor([[4, 2, 0], [4, 4, 2]])     # lengths 2 and 3 (0 is <pad>)
    log5 = torch.log(torch.tensor(5.0))
    assert torch.isclose(caption_nll(logits, targets, "caption_sum"), 2.5 * log5)
    assert torch.isclose(caption_nll(logits, targets, "token_mean"), log5)
    alphas = torch.tensor([[[1.0, 0.0]] * 3, [[0.5, 0.5]] * 3])
    frame_mask = torch.tensor([[True, False], [True, True]])
    # clip 0: frame 0 gets 2 over its two real steps -> (1-2)^2 = 1, frame 1 is padding;
    # clip 1: each frame gets 1.5 over three steps -> 2 * 0.25
    assert torch.isclose(attention_penalty(alphas, targets, frame_mask), torch.tensor(0.75))
