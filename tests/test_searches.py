"""Every registered search (models/searches.py): the one rule for max_len and min_len, config
checks that name the registered searches, and the sample search's own promises."""
import dataclasses

import pytest
import torch

from config import ConfigError
from loader.vocabulary import EOS_ID, PAD_ID
from models.searches import SEARCHES, check_search_config, decode, nucleus
from tests.tiny import tiny_clips, tiny_model
from tests.variants import attention_variants, search_names


def eval_settings(config, **values):
    return dataclasses.replace(config.eval, **{"beam_size": 3, "max_len": 5, **values})


@pytest.mark.parametrize("attention", attention_variants())
@pytest.mark.parametrize("search", search_names())
@pytest.mark.parametrize("eos_bias, min_len", [(6.0, 3), (-50.0, 1)], ids=["eos_likely", "eos_unlikely"])
def test_every_search_keeps_max_len_and_min_len(search, attention, eos_bias, min_len):
    """Every caption holds min_len to max_len words, then exactly one <eos>, then only <pad>,
    whichever words a search (stochastic ones at any seed) keeps. <eos> likely: the min_len bound
    is met; <eos> unlikely: max_len is, with <eos> forced there."""
    model, config = tiny_model(seed=5, **attention)
    with torch.no_grad():
        model.decoder.readout.bias[EOS_ID] = eos_bias
    features, mask = tiny_clips()
    e = eval_settings(config, search=search, min_len=min_len)
    result = decode(model, features, mask, e)
    words = result.lengths - 1
    assert bool(((min_len <= words) & (words <= e.max_len)).all()), result.lengths
    if eos_bias < 0:
        assert int(words.max()) == e.max_len, result.lengths
    for row, length in zip(result.tokens, result.lengths.tolist()):
        assert row[length - 1] == EOS_ID and (row[:length - 1] > EOS_ID).all()
        assert bool((row[length:] == PAD_ID).all())
    assert result.attention.shape[:2] == result.tokens.shape
    assert torch.allclose(result.attention[0, :int(result.lengths[0])].sum(-1),
                          torch.ones(int(result.lengths[0])), atol=1e-5)


def test_config_checks_name_the_field_and_the_registered_searches():
    _, config = tiny_model()
    with pytest.raises(ConfigError) as error:
        check_search_config(eval_settings(config, search="nucleus"))
    assert "eval.search 'nucleus'" in str(error.value)
    assert all(name in str(error.value) for name in SEARCHES)
    for field, value in (("top_p", 0.0), ("top_p", 1.5), ("temperature", -1.0), ("samples", 0),
                         ("min_len", 9), ("beam_size", 0)):
        with pytest.raises(ConfigError, match=f"eval.{field}"):
            check_search_config(eval_settings(config, search="sample" if field != "beam_size" else "beam",
                                              **{field: value}))


def test_every_search_has_a_run_folder_tag():
    tags = [search.tag for search in SEARCHES.values()]
    assert all(isinstance(tag, str) and tag and "/" not in tag for tag in tags)
    assert len(set(tags)) == len(tags)


def test_sampling_gives_the_same_captions_on_every_run_and_follows_its_seed():
    model, config = tiny_model(seed=4)
    with torch.no_grad():
        model.decoder.readout.weight.mul_(0.2)         # flat distributions: draws differ
    features, mask = tiny_clips(batch=6, seed=3)
    e = eval_settings(config, search="sample", samples=3, max_len=8)
    first, again = decode(model, features, mask, e), decode(model, features, mask, e)
    torch.rand(5)                                     # the global generator plays no part
    assert torch.equal(first.tokens, again.tokens) and torch.equal(first.log_probs, again.log_probs)
    other = decode(model, features, mask, dataclasses.replace(e, seed=e.seed + 1))
    assert not torch.equal(first.tokens, other.tokens)


def test_sampling_keeps_the_best_caption_per_word_of_its_draws():
    """The kept caption is, among the clip's draws, the one of highest log-probability per token
    (<eos> counted) under the model; its log-probability is the teacher-forced one."""
    from loader.vocabulary import BOS_ID
    from models.searches import decode_rows, sampled
    model, config = tiny_model(seed=4)
    with torch.no_grad():
        model.decoder.readout.weight.mul_(0.2)
    features, mask = tiny_clips(batch=2, seed=3)
    e = eval_settings(config, search="sample", samples=4, max_len=6)
    kept = decode(model, features, mask, e)
    generator = torch.Generator().manual_seed(e.seed)
    with torch.no_grad():
        rows = decode_rows(model, features, mask, 4, sampled(1.0, 1.0, generator, policy_log_probs=False),
                           e.max_len, e.min_len)
    per_word = (rows.total / rows.lengths).view(2, 4)
    assert len({tuple(row) for row in rows.tokens.tolist()}) > 2, "the draws hardly differ"
    for clip in range(2):
        best = clip * 4 + int(per_word[clip].argmax())
        length = int(rows.lengths[best])
        assert kept.tokens[clip, :length].tolist() == rows.tokens[best, :length].tolist()
        tokens = kept.tokens[clip, :length]
        inputs = torch.cat([torch.tensor([BOS_ID]), tokens[:-1]]).unsqueeze(0)
        with torch.no_grad():
            logits, _ = model(features[clip:clip + 1], mask[clip:clip + 1], inputs)
        forced = torch.log_softmax(logits[0], -1).gather(1, tokens.unsqueeze(1)).sum()
        assert float(kept.log_probs[clip]) == pytest.approx(float(forced), abs=1e-4)


def test_top_p_keeps_the_smallest_set_of_that_mass():
    probabilities = torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.05, 0.9, 0.03, 0.02]])
    kept = nucleus(probabilities, 0.7)
    assert torch.equal(kept, torch.tensor([[0.5, 0.3, 0.0, 0.0], [0.0, 0.9, 0.0, 0.0]]))
    assert torch.equal(nucleus(probabilities, 1.0), probabilities)


def test_sampling_with_a_small_top_p_or_no_temperature_is_greedy_search():
    model, config = tiny_model(seed=2)
    features, mask = tiny_clips(batch=4, seed=1)
    greedy = decode(model, features, mask, eval_settings(config, search="greedy"))
    for values in ({"top_p": 1e-6}, {"temperature": 0.0}):
        drawn = decode(model, features, mask, eval_settings(config, search="sample", **values))
        length = drawn.tokens.shape[1]
        assert torch.equal(drawn.tokens, greedy.tokens[:, :length])
        assert torch.allclose(drawn.log_probs, greedy.log_probs, atol=1e-5)
