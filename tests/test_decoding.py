import itertools

import pytest
import torch

from loader.vocabulary import BOS_ID, EOS_ID, PAD_ID
from models.searches import beam_search
from models.searches import greedy_search
from tests.reference import reference_beam_search
from tests.tiny import tiny_clips, tiny_model
from tests.variants import model_variants

WORDS = [3, 4, 5, 6]   # <unk> and the tiny vocabulary's words: all a decoder may say


def sequence_log_prob(model, features, mask, words, max_len):
    """Teacher-forced log-probability of words + <eos>, scored as the decoders score."""
    tokens = torch.tensor([[BOS_ID] + list(words)])
    with torch.no_grad():
        logits, _ = model(features, mask, tokens)
    log_probs = torch.log_softmax(logits[0], -1)
    targets = list(words) + [EOS_ID]
    return sum(float(log_probs[t, w]) for t, w in enumerate(targets))


def exhaustive_best(model, features, mask, max_len, length_penalty=0.0):
    best = (float("-inf"), None)
    for n in range(1, max_len + 1):
        for words in itertools.product(WORDS, repeat=n):
            score = sequence_log_prob(model, features, mask, words, max_len)
            normalised = score / (n + 1) ** length_penalty if length_penalty else score
            if normalised > best[0]:
                best = (normalised, list(words), score)
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("length_penalty", [0.0, 1.0, -0.5])
def test_beam_covering_every_sequence_equals_exhaustive_search(seed, length_penalty):
    # 80 beams hold every candidate of every step: 4, 4*5, 16*5, then 64 forced endings.
    model, _ = tiny_model(seed=seed)
    features, mask = tiny_clips(seed=seed)
    max_len = 3
    result = beam_search(model, features, mask, beam_size=80, max_len=max_len,
                         length_penalty=length_penalty)
    for video in range(features.shape[0]):
        _, words, score = exhaustive_best(model, features[video:video + 1], mask[video:video + 1],
                                          max_len, length_penalty)
        length = int(result.lengths[video])
        assert result.tokens[video, :length].tolist() == words + [EOS_ID]
        assert float(result.log_probs[video]) == pytest.approx(score, abs=1e-4)


@pytest.mark.parametrize("seed", [0, 3])
def test_greedy_equals_beam_width_one(seed):
    model, _ = tiny_model(seed=seed)
    features, mask = tiny_clips(batch=5, seed=seed)
    greedy = greedy_search(model, features, mask, max_len=6)
    beam = beam_search(model, features, mask, beam_size=1, max_len=6)
    for video in range(5):
        length = int(greedy.lengths[video])
        assert int(beam.lengths[video]) == length
        assert beam.tokens[video, :length].tolist() == greedy.tokens[video, :length].tolist()
        assert float(beam.log_probs[video]) == pytest.approx(float(greedy.log_probs[video]), abs=1e-5)
        assert torch.allclose(beam.attention[video, :length], greedy.attention[video, :length], atol=1e-6)


def test_finished_hypotheses_never_fill_the_beam():
    """An ended caption is never fed back: every beam that goes on is a live one."""
    model, _ = tiny_model(seed=4)
    with torch.no_grad():                  # make <eos> likely, so many beams end early
        model.decoder.readout.bias[EOS_ID] = 3.0
    fed = []
    original = model.step

    def recording_step(words, state, clips, width):
        fed.append(words.clone())
        return original(words, state, clips, width)

    model.step = recording_step
    features, mask = tiny_clips(batch=4)
    result = beam_search(model, features, mask, beam_size=3, max_len=5)
    assert len(fed) > 1, "decoding stopped before a second step; the test shows nothing"
    assert all(not bool((words == EOS_ID).any()) for words in fed)
    assert all(not bool((words == PAD_ID).any()) for words in fed)
    assert (result.lengths >= 1).all()


def test_min_len_and_max_len_are_kept():
    model, _ = tiny_model(seed=5)
    with torch.no_grad():
        model.decoder.readout.bias[EOS_ID] = 5.0
    features, mask = tiny_clips()
    result = beam_search(model, features, mask, beam_size=3, max_len=4, min_len=2)
    assert (result.lengths >= 3).all()            # two words at least, then <eos>
    with torch.no_grad():
        model.decoder.readout.bias[EOS_ID] = -20.0
    result = beam_search(model, features, mask, beam_size=3, max_len=4)
    assert (result.lengths == 5).all()            # four words, then the forced <eos>
    assert (result.tokens[:, 4] == EOS_ID).all()


def test_attention_weights_are_returned_per_token_and_skip_padded_frames():
    model, _ = tiny_model(seed=6)
    features, mask = tiny_clips()
    result = beam_search(model, features, mask, beam_size=3, max_len=5)
    length = int(result.lengths[0])
    weights = result.attention[0, :length]
    assert torch.allclose(weights.sum(-1), torch.ones(length), atol=1e-5)
    assert float(weights[:, 2:].abs().max()) == 0.0   # frames 2 and 3 of clip 0 are padding


@pytest.mark.parametrize("overrides", model_variants())
def test_beam_search_equals_the_first_beam_search_for_every_variant(overrides):
    """The beams sharing their clip (the model's step with width W) against the first beam search
    on repeated clips with the plain step (tests/reference.py): same search results."""
    model, _ = tiny_model(**overrides)
    features, mask = tiny_clips()
    fast = beam_search(model, features, mask, beam_size=3, max_len=5)
    plain = reference_beam_search(model, features, mask, beam_size=3, max_len=5)
    assert torch.equal(fast.tokens, plain.tokens) and torch.equal(fast.lengths, plain.lengths)
    assert torch.allclose(fast.log_probs, plain.log_probs, atol=1e-5)
    assert torch.allclose(fast.attention, plain.attention, atol=1e-6)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_bf16_decoding_switch_runs_the_products_in_bfloat16(beam_size):
    """eval.autocast_bf16 changes the arithmetic (log-probs move a little), not the search."""
    from models.searches import decode
    model, config = tiny_model()
    model.eval()
    features, mask = tiny_clips()
    config.eval.beam_size, config.eval.max_len = beam_size, 5
    exact = decode(model, features, mask, config.eval)
    config.eval.autocast_bf16 = True
    rounded = decode(model, features, mask, config.eval)
    assert rounded.log_probs.dtype == torch.float32
    assert not torch.equal(rounded.log_probs, exact.log_probs)
    assert torch.allclose(rounded.log_probs, exact.log_probs, rtol=0.05, atol=0.05)
    assert bool((rounded.lengths >= 1).all()) and bool((rounded.tokens[:, 0] != PAD_ID).all())


@pytest.mark.parametrize("beam_size", [1, 2, 3, 5])
@pytest.mark.parametrize("length_penalty", [0.0, 0.7])
def test_beam_search_finds_what_the_first_beam_search_found(beam_size, length_penalty):
    """Back-pointers, <eos> ranked apart from the words and one ended hypothesis kept per step
    give what the plain beam search gives (tests/reference.py: every <eos> among the 2W candidates
    ranked with them, whole histories copied every step)."""
    lengths = set()
    for seed in range(6):
        model, _ = tiny_model(seed=seed)
        with torch.no_grad():              # <eos> likely, neutral or unlikely: early and late ends
            model.decoder.readout.bias[EOS_ID] = 2.0 * (seed % 3) - 2.0
        features, mask = tiny_clips(batch=4, seed=seed)
        for min_len, max_len in ((1, 6), (3, 5)):
            args = (model, features, mask, beam_size, max_len, min_len, length_penalty)
            new, first = beam_search(*args), reference_beam_search(*args)
            assert torch.equal(new.tokens, first.tokens) and torch.equal(new.lengths, first.lengths)
            assert torch.allclose(new.log_probs, first.log_probs, atol=1e-5)
            assert torch.allclose(new.attention, first.attention, atol=1e-6)
            lengths.update(new.lengths.tolist())
    assert len(lengths) > 3, f"captions of lengths {lengths} only: the test compares too little"


@pytest.mark.parametrize("length_penalty", [0.0, 0.7, -0.5, -1.0])
def test_stopping_early_changes_no_caption(length_penalty):
    """A video stops when no live beam can beat its best ended hypothesis; running every step
    instead (stop_early False, what a CUDA graph records) must find the same captions. A negative
    penalty rewards brevity: its bound is the next step's length, not the longest (the longest
    had stopped 5 of 288 such batches too soon)."""
    for seed in range(12):
        model, _ = tiny_model(seed=seed)
        for eos_bias in (-1.0, 0.0, 1.0):
            with torch.no_grad():
                model.decoder.readout.bias[EOS_ID] = eos_bias
            for clips in range(4):
                features, mask = tiny_clips(batch=4, seed=clips)
                args = (model, features, mask, 3, 6, 1, length_penalty)
                stopped = beam_search(*args)
                every_step = beam_search(*args, stop_early=False).rebuild()
                assert torch.equal(stopped.tokens, every_step.tokens)
                assert torch.equal(stopped.log_probs, every_step.log_probs)
