import pytest
import torch

from training.self_critical import greedy_baseline, mean_of_others_baseline, self_critical_loss


def sampled_log_probs(logits, words):
    return torch.log_softmax(logits, -1).gather(-1, words.unsqueeze(-1)).squeeze(-1)


def test_a_gradient_step_raises_samples_above_the_baseline_and_lowers_those_below():
    torch.manual_seed(0)
    logits = torch.nn.Parameter(torch.randn(3, 4, 6))      # 3 samples, 4 steps, 6 words
    words = torch.tensor([[4, 5, 2, 0], [5, 4, 4, 2], [4, 2, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    rewards, baseline = torch.tensor([2.0, 0.5, 1.0]), torch.tensor([1.0, 1.0, 1.0])
    before = (sampled_log_probs(logits, words) * mask).sum(1).detach()
    loss = self_critical_loss(sampled_log_probs(logits, words), mask, rewards, baseline)
    loss.backward()
    with torch.no_grad():
        logits -= 0.1 * logits.grad
    after = (sampled_log_probs(logits, words) * mask).sum(1)
    assert after[0] > before[0] + 1e-3          # reward above the baseline: more likely
    assert after[1] < before[1] - 1e-3          # below: less likely
    assert torch.isclose(after[2], before[2])   # equal: untouched
    # the steps after <eos> get no gradient
    assert float(logits.grad[0, 3].abs().max()) == 0.0 and float(logits.grad[2, 2:].abs().max()) == 0.0


def test_loss_value_and_that_rewards_are_constants():
    log_probs = torch.tensor([[-1.0, -2.0], [-0.5, -4.0]], requires_grad=True)
    mask = torch.tensor([[True, True], [True, False]])
    rewards = torch.tensor([3.0, 1.0], requires_grad=True)
    loss = self_critical_loss(log_probs, mask, rewards, torch.tensor([1.0, 2.0]))
    # -((3 - 1) * (-3) + (1 - 2) * (-0.5)) / 2 = -(-6 + 0.5) / 2 = 2.75
    assert torch.isclose(loss, torch.tensor(2.75))
    loss.backward()
    assert rewards.grad is None


def test_mean_of_others_and_greedy_baselines_by_hand():
    rewards = torch.tensor([1.0, 2.0, 6.0, 0.0, 0.0, 3.0])     # clip-major: 2 clips x 3 samples
    expected = torch.tensor([4.0, 3.5, 1.5, 1.5, 1.5, 0.0])     # e.g. (2 + 6) / 2, (1 + 6) / 2
    assert torch.equal(mean_of_others_baseline(rewards, 3), expected)
    assert torch.equal(mean_of_others_baseline(rewards, 2), torch.tensor([2.0, 1.0, 0.0, 6.0, 3.0, 0.0]))
    assert torch.equal(greedy_baseline(torch.tensor([0.5, 2.0]), 3),
                       torch.tensor([0.5, 0.5, 0.5, 2.0, 2.0, 2.0]))


def test_mean_of_others_needs_whole_clips():
    with pytest.raises(ValueError, match="K=3"):
        mean_of_others_baseline(torch.tensor([1.0, 2.0]), 3)
    with pytest.raises(ValueError, match="self_critical_loss wants"):
        self_critical_loss(torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.bool), torch.zeros(3),
                           torch.zeros(3))
