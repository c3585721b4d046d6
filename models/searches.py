"""Decoding strategies, registered by name (eval.search). A new decoding strategy goes here.

A search is one class, registered with @register_search, with these members:
- name (what eval.search says) and tag (its short name in run folders);
- graphable: whether it can run inside a CUDA graph (eval.cuda_graphs): no host sync and the
  same work whatever the data, when called with stop_early False;
- check(eval_config): ConfigError for a bad combination of the fields it reads (each field's
  range is config.RULES');
- run(model, features, mask, eval_config, stop_early): one caption per clip (Decoded); with
  stop_early False (graphable searches only) what models/decode_graphs.finished turns into one.
A search uses nothing of the model but encode() and step() (models/sa_lstm.py), and the word
rule of models/word_rules.py for max_len and min_len.
"""
from __future__ import annotations

import torch

from config import ConfigError, check_section
from models.beam_search import beam_search, beam_steps
from models.decoded import Decoded
from models.sampling import decode_rows, most_likely, sampled

SEARCHES = {}            # name -> search (an instance)


def register_search(cls):
    """Class decorator: makes cls choosable as eval.search = cls.name."""
    if cls.name in SEARCHES and type(SEARCHES[cls.name]) is not cls:
        raise ValueError(f"a search named {cls.name!r} is registered already")
    SEARCHES[cls.name] = cls()
    return cls


def check_search_config(eval_config) -> None:
    """ConfigError naming the field when eval.* asks for something no search can do."""
    e = eval_config
    if e.search not in SEARCHES:
        raise ConfigError(f"eval.search {e.search!r} is not a registered search; choose one of "
                          f"{', '.join(sorted(SEARCHES))}")
    check_section("eval", e)           # the ranges config.check holds every eval field to
    SEARCHES[e.search].check(e)


def search_for(eval_config):
    check_search_config(eval_config)
    return SEARCHES[eval_config.search]


class Search:
    """What every search has; subclasses set name and tag and write run()."""

    name = tag = None
    graphable = False

    def check(self, eval_config) -> None:
        pass


@register_search
class BeamSearch(Search):
    """The paper's: eval.beam_size beams, scores / length**eval.length_penalty; width 1 is greedy."""

    name, tag, graphable = "beam", "beam", True

    def run(self, model, features, mask, e, stop_early: bool = True):
        if e.beam_size <= 1:
            return SEARCHES["greedy"].run(model, features, mask, e, stop_early)
        if stop_early:
            return beam_search(model, features, mask, e.beam_size, e.max_len, e.min_len, e.length_penalty)
        return beam_steps(model, features, mask, e.beam_size, e.max_len, e.min_len, e.length_penalty,
                          stop_early=False)


@register_search
class GreedySearch(Search):
    """The most likely word at each step. stop_early False runs all max_len + 1 steps with no host
    sync: the same captions, tokens and attention padded to max_len + 1 positions."""

    name, tag, graphable = "greedy", "greedy", True

    def run(self, model, features, mask, e, stop_early: bool = True) -> Decoded:
        return greedy_search(model, features, mask, e.max_len, e.min_len, stop_early)


@torch.no_grad()
def greedy_search(model, features, mask, max_len: int = 30, min_len: int = 1,
                  stop_early: bool = True) -> Decoded:
    rows = decode_rows(model, features, mask, 1, most_likely, max_len, min_len, stop_early)
    return Decoded(rows.tokens, rows.total, rows.attention, rows.lengths)


@register_search
class SampleSearch(Search):
    """eval.samples captions drawn per clip from softmax(logits / eval.temperature), cut to the
    eval.top_p nucleus; the one with the best log-probability per word (<eos> counted) under the
    model wins. Draws come from a generator of its own seeded with eval.seed at each call, so a
    rerun gives the same captions."""

    name, tag = "sample", "sample"

    def run(self, model, features, mask, e, stop_early: bool = True) -> Decoded:
        generator = torch.Generator(device=features.device).manual_seed(e.seed)
        choose = sampled(e.temperature, e.top_p, generator, policy_log_probs=False)
        with torch.no_grad():
            rows = decode_rows(model, features, mask, e.samples, choose, e.max_len, e.min_len, stop_early)
        batch, samples = features.shape[0], e.samples
        per_word = (rows.total / rows.lengths).view(batch, samples)
        best = per_word.argmax(1) + torch.arange(batch, device=features.device) * samples
        return Decoded(rows.tokens[best], rows.total[best], rows.attention[best], rows.lengths[best])
