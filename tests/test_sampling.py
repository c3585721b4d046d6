"""Sampled captions (models/searches.py, training/self_critical.py) and scheduled sampling (SALSTM.step_loop)."""
import pytest
import torch

from loader.vocabulary import BOS_ID, EOS_ID, PAD_ID
from models.searches import greedy_search
from training.self_critical import sample_captions
from tests.tiny import tiny_clips, tiny_model
from tests.variants import attention_variants


@pytest.mark.parametrize("temperature", [0.0, 1e-4])
def test_sampling_as_temperature_goes_to_zero_is_greedy_search(temperature):
    model, _ = tiny_model(seed=4)
    features, mask = tiny_clips()
    greedy = greedy_search(model, features, mask, max_len=6)
    torch.manual_seed(0)
    sampled = sample_captions(model, features, mask, samples_per_clip=3, max_len=6, temperature=temperature)
    width = greedy.tokens.shape[1]
    expected = greedy.tokens.repeat_interleave(3, dim=0)           # clip-major rows
    assert sampled.tokens.shape[1] == width
    assert torch.equal(sampled.tokens, expected)


@pytest.mark.parametrize("attention", attention_variants())
def test_sampled_log_probs_are_the_teacher_forced_ones_of_the_sampled_words(attention):
    """What SCST differentiates is log p(caption) under the model, as training computes it, with
    the words sampling may not draw left out of the normaliser: <pad> and <bos>, <eos> as the first
    word, and every word but <eos> after max_len words. The K rows of a clip share it in the step;
    teacher forcing gets each row's clip repeated."""
    model, _ = tiny_model(seed=5, **attention)
    features, mask = tiny_clips()
    torch.manual_seed(1)
    sampled = sample_captions(model, features, mask, samples_per_clip=4, max_len=5)
    rows = sampled.tokens.shape[0]
    assert rows == 12
    inputs = torch.cat([torch.full((rows, 1), BOS_ID), sampled.tokens[:, :-1]], 1)
    inputs = inputs.masked_fill(inputs == PAD_ID, PAD_ID)
    logits, _ = model(features.repeat_interleave(4, 0), mask.repeat_interleave(4, 0), inputs)
    logits = logits.detach().clone()
    logits[..., [PAD_ID, BOS_ID]] = float("-inf")
    logits[:, 0, EOS_ID] = float("-inf")
    if logits.shape[1] == 6:
        logits[:, 5, :EOS_ID], logits[:, 5, EOS_ID + 1:] = float("-inf"), float("-inf")
    expected = torch.log_softmax(logits, -1).gather(2, sampled.tokens.clamp(min=0).unsqueeze(2)).squeeze(2)
    assert torch.allclose(sampled.log_probs[sampled.mask], expected[sampled.mask], atol=1e-5)
    assert float(sampled.log_probs[~sampled.mask].detach().abs().sum()) == 0.0
    # every caption ends with exactly one <eos>, then only <pad>
    ends = (sampled.tokens == EOS_ID).sum(1)
    assert bool((ends == 1).all())
    assert torch.equal(sampled.mask.sum(1), (sampled.tokens != PAD_ID).sum(1))
    # and the sum is differentiable
    sampled.caption_log_probs().sum().backward()
    assert model.decoder.readout.weight.grad is not None


def test_sampling_draws_different_captions_per_clip_and_respects_max_len():
    model, _ = tiny_model(seed=4)
    with torch.no_grad():
        model.decoder.readout.weight.mul_(0.1)       # flat distributions: samples differ
        model.decoder.readout.bias[EOS_ID] = -5.0    # long captions: max_len must stop them
    features, mask = tiny_clips()
    torch.manual_seed(2)
    sampled = sample_captions(model, features, mask, samples_per_clip=5, max_len=4)
    assert sampled.tokens.shape[1] <= 5 and bool((sampled.mask.sum(1) <= 5).all())
    per_clip = sampled.tokens.view(3, 5, -1)
    assert any(len({tuple(row.tolist()) for row in clip}) > 1 for clip in per_clip)


def test_after_max_len_words_eos_is_forced_with_probability_one_and_no_gradient():
    model, _ = tiny_model(seed=4)
    with torch.no_grad():
        model.decoder.readout.bias[EOS_ID] = -20.0   # <eos> never drawn before it is forced
    features, mask = tiny_clips()
    torch.manual_seed(3)
    sampled = sample_captions(model, features, mask, samples_per_clip=4, max_len=3)
    assert sampled.tokens.shape[1] == 4 and bool(sampled.mask.all())
    assert bool((sampled.tokens[:, 3] == EOS_ID).all()) and bool((sampled.tokens[:, :3] != EOS_ID).all())
    assert float(sampled.log_probs[:, 3].detach().abs().max()) == 0.0     # log 1
    forced_step = torch.autograd.grad(sampled.log_probs[:, 3].sum(), list(model.parameters()),
                                      retain_graph=True, allow_unused=True)
    assert all(g is None or float(g.abs().max()) == 0.0 for g in forced_step)
    sampled.caption_log_probs().sum().backward()
    assert all(bool(p.grad.isfinite().all()) for p in model.parameters() if p.grad is not None)


def test_scheduled_sampling_feeds_the_models_own_words():
    model, _ = tiny_model(seed=3)
    features, mask = tiny_clips()
    inputs = torch.tensor([[1, 4, 5, 6], [1, 6, 4, 5], [1, 5, 5, 5]])
    other = torch.tensor([[1, 6, 6, 4], [1, 3, 3, 3], [1, 4, 6, 4]])   # other reference words
    exact, _ = model(features, mask, inputs)
    torch.manual_seed(7)
    zero, _ = model(features, mask, inputs, own_word_probability=1e-9)  # the slow path, no draw taken
    assert torch.allclose(zero, exact, atol=1e-5)
    torch.manual_seed(7)
    own_a, _ = model(features, mask, inputs, own_word_probability=1.0)
    torch.manual_seed(7)
    own_b, _ = model(features, mask, other, own_word_probability=1.0)
    # with probability 1 only <bos> comes from the reference: the references no longer matter
    assert torch.allclose(own_a, own_b, atol=1e-6)
    assert not torch.allclose(own_a, exact, atol=1e-3)


def test_scheduled_sampling_probability_rises_by_steps_up_to_its_ceiling():
    from train import own_word_probability
    from tests.tiny import tiny_config
    t = tiny_config(**{"train.scheduled_sampling": 0.12, "train.scheduled_sampling_step": 0.05,
                       "train.scheduled_sampling_every": 2}).train
    assert [own_word_probability(t, epoch) for epoch in range(1, 9)] == pytest.approx(
        [0.0, 0.0, 0.05, 0.05, 0.10, 0.10, 0.12, 0.12])
    t.scheduled_sampling = 0.0
    assert own_word_probability(t, 9) == 0.0


def test_draw_is_multinomial_without_its_host_reads():
    """models.searches.draw gives torch.multinomial's draws from the same generator state, and
    reads nothing back to the host (multinomial checks its input there, inside its kernel, where
    a dispatch mode cannot see it: two waits on a GPU)."""
    from models.searches import draw
    from tests.capture_rules import SyncOrValueShapes
    for seed, shape in enumerate([(50, 9466), (7,), (3, 5)]):
        logits = 3 * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
        probabilities = torch.softmax(logits, -1)
        torch.manual_seed(seed)
        expected = torch.multinomial(probabilities, 1).squeeze(-1)
        torch.manual_seed(seed)
        with SyncOrValueShapes() as mode:
            drawn = draw(probabilities)
        assert torch.equal(drawn, expected) and mode.found == []
