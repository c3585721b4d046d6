"""Decoding strategies, registered by name (eval.search); docs/extending.md adds one.

A search is one class under @register_search: name (what eval.search says), tag (its short name in
run folders), fields (the eval fields it reads beyond max_len and min_len), graphable (whether,
called with stop_early False, it runs every step with no host sync, so a CUDA graph may record it),
check(eval_config) (optional, a ConfigError for a bad combination of its fields) and
run(model, features, mask, eval_config, stop_early) -> Decoded. A search uses nothing of the model
but encode() and step(), and the one word rule below.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

import config as config_module
from config import check_section
from loader.vocabulary import BOS_ID, EOS_ID, PAD_ID
from models.decode_graphs import graphed_decode
from utils import autocast_bf16, tf32_products

SEARCHES = config_module.VARIANTS["eval.search"] = {}      # name -> search (an instance)


def register_search(cls):
    """Class decorator: makes cls choosable as eval.search = cls.name."""
    if cls.name in SEARCHES and type(SEARCHES[cls.name]) is not cls:
        raise ValueError(f"a search named {cls.name!r} is registered already")
    SEARCHES[cls.name] = cls()
    return cls


def check_search_config(eval_config) -> None:
    """ConfigError naming the field when eval.* asks for something no search can do."""
    check_section("eval", eval_config)
    config_module.check_variant("eval.search", eval_config)


@dataclass
class Decoded:
    """What every search returns: one caption per clip."""
    tokens: torch.Tensor      # (B, L) word ids, <eos> then <pad> after the caption
    log_probs: torch.Tensor   # (B,) sum of the log-probabilities of the words and <eos>
    attention: torch.Tensor   # (B, L, K) attention weights of each generated token
    lengths: torch.Tensor     # (B,) tokens including <eos>


def decode(model, features, mask, eval_config) -> Decoded:
    """One caption per clip by eval.search, under eval.autocast_bf16 and eval.tf32; with
    eval.cuda_graphs, on CUDA, a graphable search's decode replayed as a CUDA graph per batch shape."""
    check_search_config(eval_config)
    search = SEARCHES[eval_config.search]
    graphed = eval_config.cuda_graphs and features.is_cuda and search.graphable
    with (tf32_products(eval_config.tf32),
          autocast_bf16(features.device.type, eval_config.autocast_bf16, cache=not graphed)):
        if graphed:
            return graphed_decode(model, features, mask, eval_config, search)
        return search.run(model, features, mask, eval_config)


# ---- the word rule: which words may come next ------------------------------------------------
assert (PAD_ID, BOS_ID) == (0, 1) and EOS_ID == 2        # one slice names <pad> and <bos>


def must_end(step: int, max_len) -> bool:
    """Step t (from 0) chooses the word after t words: after max_len words only <eos> is left."""
    return step >= max_len


def may_end(step: int, min_len: int, max_len) -> bool:
    return step >= min_len or must_end(step, max_len)


def forbid_words(scores, step: int, min_len: int = 0, max_len=float("inf")) -> None:
    """In place, -inf on the words that may not come next (scores (rows, V): logits or log-probs):
    never <pad> or <bos>, <eos> only once min_len words are said, only <eos> after max_len."""
    scores[:, :EOS_ID] = float("-inf")
    if not may_end(step, min_len, max_len):
        scores[:, EOS_ID] = float("-inf")
    if must_end(step, max_len):
        scores[:, :EOS_ID] = float("-inf")
        scores[:, EOS_ID + 1:] = float("-inf")


class Search:
    """What every search has; subclasses set name, tag and fields and write run()."""

    name = tag = None
    fields = ()
    graphable = False


# ---- one word per row and step: greedy and sampled captions ----------------------------------
def draw(probabilities: torch.Tensor, generator=None) -> torch.Tensor:
    """One index per row in proportion to its probabilities: torch.multinomial(p, 1)'s draws from
    the same generator (argmax of p / q, q ~ Exp(1)) without its input checks' host reads."""
    race = torch.empty_like(probabilities).exponential_(1, generator=generator)
    return (probabilities / race).argmax(-1)


def nucleus(probabilities: torch.Tensor, top_p: float) -> torch.Tensor:
    """Top-p (Holtzman et al. 2020): each row's most likely words whose probabilities first reach
    top_p together (at least one), the rest 0; not renormalised (draw needs no sum of 1)."""
    if top_p >= 1.0:
        return probabilities
    ordered, order = probabilities.sort(dim=-1, descending=True)
    before = ordered.cumsum(-1) - ordered               # the mass of the more likely words
    ordered = ordered.masked_fill(before >= top_p, 0.0)
    return torch.zeros_like(probabilities).scatter(-1, order, ordered)


@dataclass
class Rows:
    tokens: torch.Tensor      # (N, L) word ids, <eos> then <pad>
    log_probs: torch.Tensor   # (N, L) log-probability of each token as the chooser scored it
    mask: torch.Tensor        # (N, L) True for the caption's tokens, <eos> included
    attention: torch.Tensor   # (N, L, K), zero after the caption
    total: torch.Tensor       # (N,) sum of log_probs, step by step

    @property
    def lengths(self) -> torch.Tensor:
        return self.mask.sum(1)

    def caption_log_probs(self) -> torch.Tensor:
        return (self.log_probs * self.mask).sum(1)


def decode_rows(model, features, mask, rows_per_clip: int, choose, max_len: int, min_len: int,
                stop_early: bool = True) -> Rows:
    """rows_per_clip rows per clip (clip-major: clip b's rows are b*K .. b*K + K - 1), each step's
    words from choose(logits, step, min_len, max_len) -> (words, their log-probabilities); a row
    stops at <eos>. stop_early False runs all max_len + 1 steps with no host sync."""
    width, device = rows_per_clip, features.device
    clips = model.encode(features, mask, rows_per_clip=width)
    state = clips.state if width == 1 else tuple(s.repeat_interleave(width, dim=0) for s in clips.state)
    rows = features.shape[0] * width
    words = torch.full((rows,), BOS_ID, dtype=torch.long, device=device)
    done = torch.zeros(rows, dtype=torch.bool, device=device)
    total = torch.zeros(rows, device=device)
    tokens, log_probs, real, alphas = [], [], [], []
    for step in range(max_len + 1):
        logits, state, alpha = model.step(words, state, clips, width)
        chosen, chosen_log_probs = choose(logits, step, min_len, max_len)
        words = chosen.masked_fill(done, PAD_ID)
        chosen_log_probs = chosen_log_probs.masked_fill(done, 0.0)
        total = total + chosen_log_probs
        tokens.append(words)
        log_probs.append(chosen_log_probs)
        real.append(~done)
        alphas.append(alpha.masked_fill(done.unsqueeze(-1), 0.0))
        done = done | (words == EOS_ID)
        if stop_early and bool(done.all()):
            break
    return Rows(torch.stack(tokens, 1), torch.stack(log_probs, 1), torch.stack(real, 1),
                torch.stack(alphas, 1), total)


def most_likely(logits, step: int, min_len: int, max_len: int) -> tuple:
    """Greedy search's choice: the most likely allowed word, scored by the model's log-probability."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    forbid_words(log_probs, step, min_len, max_len)
    best, words = log_probs.max(-1)
    return words, best


def sampled(temperature: float = 1.0, top_p: float = 1.0, generator=None, policy_log_probs: bool = True):
    """A choice that draws each word from softmax(logits / temperature) over the allowed words,
    cut to the top_p nucleus; temperature 0 takes the most likely word. policy_log_probs: a word
    scored under that policy (what SCST differentiates), else under the model (what sample ranks by)."""
    def choose(logits, step: int, min_len: int, max_len: int) -> tuple:
        logits = logits.float()
        policy = logits / temperature if temperature > 0 else logits.clone()
        forbid_words(policy, step, min_len, max_len)
        policy = torch.log_softmax(policy, dim=-1)
        with torch.no_grad():
            drawn = draw(nucleus(policy.exp(), top_p), generator) if temperature > 0 else policy.argmax(-1)
        if policy_log_probs:
            scored = policy
        else:
            scored = torch.log_softmax(logits, dim=-1)
            forbid_words(scored, step, min_len, max_len)
        return drawn, scored.gather(1, drawn.unsqueeze(1)).squeeze(1)
    return choose


@torch.no_grad()
def greedy_search(model, features, mask, max_len: int = 30, min_len: int = 1,
                  stop_early: bool = True) -> Decoded:
    rows = decode_rows(model, features, mask, 1, most_likely, max_len, min_len, stop_early)
    return Decoded(rows.tokens, rows.total, rows.attention, rows.lengths)


# ---- beam search ----------------------------------------------------------------------------
class BeamHistory:
    """Beam search's steps as back-pointers (one index a step, where copying every beam's history
    would cost several), and the captions rebuilt from them once at the end. Rows are numbered
    across all steps, with one extra "nothing" row at the end: its own parent, word <pad>, zero
    attention."""

    def __init__(self, batch: int, device):
        self.batch, self.device = batch, device
        self.alphas = []          # per step: (rows, K) attention of the rows fed at that step
        self.parents = []         # per step t: (rows of t + 1,) parent row among step t's rows
        self.words = []           # per step t: (rows of t + 1,) word fed at step t + 1
        self.ends = []            # per step where <eos> may come: (step, normalised, raw, beam)
        self.row_tables = {}

    def row_table(self, live: int, per_beam: int) -> torch.Tensor:
        """(B, live * per_beam): the row (video * live + beam) of each candidate; once per shape."""
        key = (live, per_beam)
        if key not in self.row_tables:
            candidates = torch.arange(live * per_beam, device=self.device)
            videos = torch.arange(self.batch, device=self.device).unsqueeze(1)
            self.row_tables[key] = videos * live + candidates // per_beam
        return self.row_tables[key]

    def add_end(self, step: int, raw: torch.Tensor, beam: torch.Tensor, normalised) -> torch.Tensor:
        """The best hypothesis (raw score, beam) of each video that ends at `step`; its score."""
        score = normalised(raw, step + 1)
        self.ends.append((step, score, raw, beam))
        return score

    def rebuild(self) -> Decoded:
        """Each video's best hypothesis, back from the row it ended at: ended at step e, it holds
        the words fed at steps 1..e, then <eos>, and its rows' attention at steps 0..e."""
        batch, device = self.batch, self.device
        steps, scores, raws, beams = zip(*self.ends)
        # the earliest step of the best score, as beam search's strict "better than" kept it
        score, which = torch.stack(scores).max(0)
        pick = which.unsqueeze(0)
        raw = score if raws[0] is scores[0] else torch.stack(raws).gather(0, pick).squeeze(0)
        beam = torch.stack(beams).gather(0, pick).squeeze(0)
        ended = score > float("-inf")
        end_step = torch.where(ended, torch.tensor(steps, device=device)[which], -1)

        sizes = [alpha.shape[0] for alpha in self.alphas]     # rows fed at each step
        firsts = [sum(sizes[:t]) for t in range(len(sizes))]   # each step's first row
        nothing = sum(sizes)
        at = end_step.clamp(min=0)
        beams_of_step = torch.tensor([size // batch for size in sizes], device=device)
        ended_row = (torch.tensor(firsts, device=device)[at] + beam
                     + torch.arange(batch, device=device) * beams_of_step[at])
        ended_row = torch.where(ended, ended_row, nothing)
        fed = len(sizes) - 1                                   # steps whose successors were fed
        first_of_parent = torch.repeat_interleave(torch.tensor(firsts[:fed], dtype=torch.long),
                                                  torch.tensor(sizes[1:], dtype=torch.long))
        no_rows = [torch.zeros(0, dtype=torch.long, device=device)]   # when no step was fed
        parent_of = F.pad(torch.cat(self.parents[:fed] + no_rows) + first_of_parent.to(device),
                          (sizes[0], 1), value=nothing)
        word_of = F.pad(torch.cat(self.words[:fed] + no_rows), (sizes[0], 1), value=PAD_ID)
        attention_of = F.pad(torch.cat(self.alphas), (0, 0, 0, 1))

        length = int(end_step.max()) + 1
        back = [ended_row]                                     # rows at steps e, e - 1, ..., 0
        for _ in range(length - 1):
            back.append(parent_of[back[-1]])
        back.append(torch.full_like(ended_row, nothing))
        back = torch.stack(back, 1)                            # (B, length + 1)
        # position t holds the row of step t, read at e - t; positions after e read "nothing"
        offset = end_step.unsqueeze(1) - torch.arange(length + 1, device=device)
        rows = back.gather(1, torch.where(offset < 0, length, offset))
        tokens = word_of[rows[:, 1:]]                          # the word fed at t + 1 is said at t
        positions = torch.arange(length, device=device)
        tokens = torch.where(positions == end_step.unsqueeze(1), EOS_ID, tokens)
        return Decoded(tokens, raw, attention_of[rows[:, :-1]], end_step + 1)


@torch.no_grad()
def beam_search(model, features, mask, beam_size: int = 5, max_len: int = 30, min_len: int = 1,
                length_penalty: float = 0.0, stop_early: bool = True):
    """Best caption per video by sum of log-probs / length**length_penalty (length with <eos>),
    batched over videos and beams. Each step the W best candidates that are not <eos> go on (from
    one start beam; a video's beams share its clip); the best <eos> candidate ends a hypothesis when
    it ranks among the W best of all (so width 1 is greedy search). A video stops when no live beam
    can beat its best ended one. stop_early False runs all max_len + 1 steps with no host sync and
    returns the BeamHistory, whose rebuild() gives the same captions."""
    batch, device = features.shape[0], features.device
    width = beam_size
    clips = model.encode(features, mask, rows_per_clip=width)
    state = clips.state
    live = 1
    live_scores = torch.zeros(batch, 1, device=device)
    words = torch.full((batch,), BOS_ID, dtype=torch.long, device=device)
    best_score = torch.full((batch,), float("-inf"), device=device)
    history = BeamHistory(batch, device)
    if length_penalty:
        normalised = lambda scores, length: scores / float(length) ** length_penalty
    else:
        normalised = lambda scores, length: scores

    for step in range(max_len + 1):
        logits, state, alpha = model.step(words, state, clips, live)
        history.alphas.append(alpha)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        forbid_words(log_probs, step, min_len, max_len)
        ends_allowed = may_end(step, min_len, max_len)
        if ends_allowed:   # <eos> is ranked apart from the words, one candidate per beam
            eos_scores = (live_scores.view(-1) + log_probs[:, EOS_ID]).view(batch, live)
        if must_end(step, max_len):
            history.add_end(step, *eos_scores.max(1), normalised)
            break
        log_probs[:, EOS_ID] = float("-inf")
        word_scores, word_ids = log_probs.topk(min(width, log_probs.shape[1]), dim=1)
        candidates = (live_scores.view(-1, 1) + word_scores).view(batch, -1)
        live_scores, picked = candidates.topk(min(width, candidates.shape[1]), dim=1)   # sorted
        if ends_allowed:
            end_raw, end_beam = eos_scores.max(1)
            if live_scores.shape[1] == width:
                # the best <eos> ranks among the W best unless W words beat it (it wins ties, as
                # greedy search's max picks the lowest id); the other <eos> rank below it
                end_raw = end_raw.masked_fill(end_raw < live_scores[:, -1], float("-inf"))
            end_score = history.add_end(step, end_raw, end_beam, normalised)
            if stop_early:
                best_score = torch.maximum(best_score, end_score)
        parent_rows = history.row_table(live, word_ids.shape[1]).gather(1, picked).view(-1)
        words = word_ids.view(batch, -1).gather(1, picked).view(-1)
        history.parents.append(parent_rows)
        history.words.append(words)
        state = tuple(s[parent_rows] for s in state)
        live = live_scores.shape[1]
        # Log-probs only fall: a live beam can at best keep its score, normalised at the length
        # that flatters it most (the longest for a positive penalty, the next step's otherwise).
        best_length = max_len + 1 if length_penalty >= 0 else step + 2
        if (stop_early and ends_allowed
                and bool((best_score >= normalised(live_scores[:, 0], best_length)).all())):
            break
    return history.rebuild() if stop_early else history


# ---- the registered searches ------------------------------------------------------------------
@register_search
class BeamSearch(Search):
    """The paper's: eval.beam_size beams, scores / length**eval.length_penalty; width 1 is greedy."""

    name, tag, fields, graphable = "beam", "beam", ("beam_size", "length_penalty"), True

    def run(self, model, features, mask, eval_config, stop_early: bool = True):
        e = eval_config
        if e.beam_size <= 1:
            return greedy_search(model, features, mask, e.max_len, e.min_len, stop_early)
        return beam_search(model, features, mask, e.beam_size, e.max_len, e.min_len, e.length_penalty,
                           stop_early)


@register_search
class GreedySearch(Search):
    """The most likely word at each step."""

    name, tag, graphable = "greedy", "greedy", True

    def run(self, model, features, mask, eval_config, stop_early: bool = True) -> Decoded:
        return greedy_search(model, features, mask, eval_config.max_len, eval_config.min_len, stop_early)


@register_search
class SampleSearch(Search):
    """eval.samples captions drawn per clip from softmax(logits / eval.temperature), cut to the
    eval.top_p nucleus; the best log-probability per word (<eos> counted) under the model wins.
    Draws come from a generator seeded with eval.seed at each call: a rerun gives the same captions."""

    name, tag, fields = "sample", "sample", ("samples", "temperature", "top_p", "seed")

    def run(self, model, features, mask, eval_config, stop_early: bool = True) -> Decoded:
        e = eval_config
        generator = torch.Generator(device=features.device).manual_seed(e.seed)
        choose = sampled(e.temperature, e.top_p, generator, policy_log_probs=False)
        with torch.no_grad():
            rows = decode_rows(model, features, mask, e.samples, choose, e.max_len, e.min_len, stop_early)
        batch, samples = features.shape[0], e.samples
        per_word = (rows.total / rows.lengths).view(batch, samples)
        best = per_word.argmax(1) + torch.arange(batch, device=features.device) * samples
        return Decoded(rows.tokens[best], rows.total[best], rows.attention[best], rows.lengths[best])
