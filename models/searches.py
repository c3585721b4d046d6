"""Decoding strategies, registered by name (eval.search): a Search subclass under @register_search,
whose run() uses only encode(), step() and the word rule below; docs/extending.md adds one."""
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
    if cls.name in SEARCHES and type(SEARCHES[cls.name]) is not cls:
        raise ValueError(f"a search named {cls.name!r} is registered already")
    SEARCHES[cls.name] = cls()
    return cls


def check_search_config(eval_config) -> None:
    check_section("eval", eval_config)
    config_module.check_variant("eval.search", eval_config)


@dataclass
class Decoded:
    """One caption per clip."""
    tokens: torch.Tensor      # (B, L) word ids, <eos> then <pad>
    log_probs: torch.Tensor   # (B,) summed over the words and <eos>
    attention: torch.Tensor   # (B, L, K)
    lengths: torch.Tensor     # (B,) tokens including <eos>


def decode(model, features, mask, eval_config) -> Decoded:
    """One caption per clip by eval.search; with eval.cuda_graphs on CUDA, replayed as a CUDA graph."""
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


def forbid_words(scores, step: int, min_len: int = 0, max_len=float("inf")) -> None:
    """In place, -inf on <pad>, <bos>, <eos> before min_len words, and all but <eos> after max_len."""
    scores[:, :EOS_ID] = float("-inf")
    if step >= max_len:
        scores[:, EOS_ID + 1:] = float("-inf")
    elif step < min_len:
        scores[:, EOS_ID] = float("-inf")


class Search:
    """name, tag (for run folders), fields (the eval fields it reads), graphable (stop_early False runs
    with no host sync), an optional check(eval_config), run(...) -> Decoded."""
    name, tag, fields, graphable = None, None, (), False


# ---- one word per row and step: greedy and sampled captions ----------------------------------
def draw(probabilities: torch.Tensor, generator=None) -> torch.Tensor:
    """torch.multinomial(p, 1)'s draws (argmax of p / q, q ~ Exp(1)) without its host reads."""
    return (probabilities / torch.empty_like(probabilities).exponential_(1, generator=generator)).argmax(-1)


def nucleus(probabilities: torch.Tensor, top_p: float) -> torch.Tensor:
    """Top-p (Holtzman et al. 2020), not renormalised: draw needs no sum of 1."""
    if top_p >= 1.0:
        return probabilities
    ordered, order = probabilities.sort(dim=-1, descending=True)
    before = ordered.cumsum(-1) - ordered               # the mass of the more likely words
    ordered = ordered.masked_fill(before >= top_p, 0.0)
    return torch.zeros_like(probabilities).scatter(-1, order, ordered)


@dataclass
class Rows:
    tokens: torch.Tensor      # (N, L) word ids, <eos> then <pad>
    log_probs: torch.Tensor   # (N, L) as the chooser scored each token
    mask: torch.Tensor        # (N, L) True up to <eos>
    attention: torch.Tensor   # (N, L, K), zero after the caption
    total: torch.Tensor       # (N,) sum of log_probs

    @property
    def lengths(self) -> torch.Tensor:
        return self.mask.sum(1)

    def caption_log_probs(self) -> torch.Tensor:
        return (self.log_probs * self.mask).sum(1)


def decode_rows(model, features, mask, rows_per_clip: int, choose, max_len: int, min_len: int,
                stop_early: bool = True) -> Rows:
    """rows_per_clip rows per clip, clip-major, each step's words from choose(logits, step, min_len,
    max_len) -> (words, log-probs) until <eos>; stop_early False runs every step with no host sync."""
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
    return Rows(torch.stack(tokens, 1), torch.stack(log_probs, 1), torch.stack(real, 1), torch.stack(alphas, 1), total)


def most_likely(logits, step: int, min_len: int, max_len: int) -> tuple:
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    forbid_words(log_probs, step, min_len, max_len)
    best, words = log_probs.max(-1)
    return words, best


def sampled(temperature: float = 1.0, top_p: float = 1.0, generator=None, policy_log_probs: bool = True):
    """Draws from softmax(logits / temperature) cut to top_p (temperature 0: argmax), scored under
    that policy (what SCST differentiates) or, without policy_log_probs, under the model."""
    def choose(logits, step: int, min_len: int, max_len: int) -> tuple:
        logits = logits.float()
        policy = logits / temperature if temperature > 0 else logits.clone()
        forbid_words(policy, step, min_len, max_len)
        policy = torch.log_softmax(policy, dim=-1)
        with torch.no_grad():
            drawn = draw(nucleus(policy.exp(), top_p), generator) if temperature > 0 else policy.argmax(-1)
        scored = policy if policy_log_probs else torch.log_softmax(logits, dim=-1)
        if not policy_log_probs:
            forbid_words(scored, step, min_len, max_len)
        return drawn, scored.gather(1, drawn.unsqueeze(1)).squeeze(1)
    return choose


@torch.no_grad()
def greedy_search(model, features, mask, max_len: int = 30, min_len: int = 1, stop_early: bool = True) -> Decoded:
    rows = decode_rows(model, features, mask, 1, most_likely, max_len, min_len, stop_early)
    return Decoded(rows.tokens, rows.total, rows.attention, rows.lengths)


# ---- beam search ----------------------------------------------------------------------------
class BeamHistory:
    """Beam search's steps as back-pointers; rows numbered across steps, the last one "nothing"."""

    def __init__(self, batch: int, device):
        self.batch, self.device = batch, device
        self.alphas = []          # per step: (rows, K) attention of the rows fed at that step
        self.parents = []         # per step t: (rows of t + 1,) parent row among step t's rows
        self.words = []           # per step t: (rows of t + 1,) word fed at step t + 1
        self.ends = []            # per step where <eos> may come: (step, normalised, raw, beam)
        self.row_tables = {}

    def row_table(self, live: int, per_beam: int) -> torch.Tensor:
        """(B, live * per_beam): the row (video * live + beam) of each candidate."""
        if (live, per_beam) not in self.row_tables:
            candidates = torch.arange(live * per_beam, device=self.device)
            videos = torch.arange(self.batch, device=self.device).unsqueeze(1)
            self.row_tables[live, per_beam] = videos * live + candidates // per_beam
        return self.row_tables[live, per_beam]

    def add_end(self, step: int, raw: torch.Tensor, beam: torch.Tensor, normalised) -> torch.Tensor:
        score = normalised(raw, step + 1)
        self.ends.append((step, score, raw, beam))
        return score

    def rebuild(self) -> Decoded:
        """Each video's best hypothesis, back from the row it ended at (step e): the words fed at
        steps 1..e, then <eos>, and its rows' attention at steps 0..e."""
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
        ended_row = torch.where(ended, torch.tensor(firsts, device=device)[at] + beam
                                + torch.arange(batch, device=device) * beams_of_step[at], nothing)
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
        tokens = torch.where(torch.arange(length, device=device) == end_step.unsqueeze(1), EOS_ID, tokens)
        return Decoded(tokens, raw, attention_of[rows[:, :-1]], end_step + 1)


@torch.no_grad()
def beam_search(model, features, mask, beam_size: int = 5, max_len: int = 30, min_len: int = 1,
                length_penalty: float = 0.0, stop_early: bool = True):
    """Best caption per video by sum of log-probs / length**length_penalty (<eos> counted). Each
    step the W best non-<eos> candidates go on; the best <eos> ends a hypothesis when it ranks among
    the W best of all (width 1 is greedy). A video stops when no live beam can beat its best ended
    one. stop_early False runs every step with no host sync and returns the BeamHistory."""
    batch, device, width = features.shape[0], features.device, beam_size
    clips = model.encode(features, mask, rows_per_clip=width)
    state, live = clips.state, 1
    live_scores = torch.zeros(batch, 1, device=device)
    words = torch.full((batch,), BOS_ID, dtype=torch.long, device=device)
    best_score = torch.full((batch,), float("-inf"), device=device)
    history = BeamHistory(batch, device)
    normalised = ((lambda scores, length: scores / float(length) ** length_penalty) if length_penalty
                  else (lambda scores, length: scores))

    for step in range(max_len + 1):
        logits, state, alpha = model.step(words, state, clips, live)
        history.alphas.append(alpha)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        forbid_words(log_probs, step, min_len, max_len)
        ends_allowed = step >= min_len or step >= max_len      # step t (from 0) chooses the word after t words
        if ends_allowed:   # <eos> is ranked apart from the words, one candidate per beam
            eos_scores = (live_scores.view(-1) + log_probs[:, EOS_ID]).view(batch, live)
        if step >= max_len:
            history.add_end(step, *eos_scores.max(1), normalised)
            break
        log_probs[:, EOS_ID] = float("-inf")
        word_scores, word_ids = log_probs.topk(min(width, log_probs.shape[1]), dim=1)
        candidates = (live_scores.view(-1, 1) + word_scores).view(batch, -1)
        live_scores, picked = candidates.topk(min(width, candidates.shape[1]), dim=1)   # sorted
        if ends_allowed:
            end_raw, end_beam = eos_scores.max(1)
            if live_scores.shape[1] == width:
                # the best <eos> ranks among the W best unless W words beat it (it wins ties)
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
        # log-probs only fall: a live beam at best keeps its score, at the length that flatters it
        best_length = max_len + 1 if length_penalty >= 0 else step + 2
        if (stop_early and ends_allowed
                and bool((best_score >= normalised(live_scores[:, 0], best_length)).all())):
            break
    return history.rebuild() if stop_early else history


# ---- the registered searches ------------------------------------------------------------------
@register_search
class BeamSearch(Search):
    name, tag, fields, graphable = "beam", "beam", ("beam_size", "length_penalty"), True

    def run(self, model, features, mask, eval_config, stop_early: bool = True):
        e = eval_config
        if e.beam_size <= 1:
            return SEARCHES["greedy"].run(model, features, mask, e, stop_early)
        return beam_search(model, features, mask, e.beam_size, e.max_len, e.min_len, e.length_penalty, stop_early)


@register_search
class GreedySearch(Search):
    name, tag, graphable = "greedy", "greedy", True

    def run(self, model, features, mask, eval_config, stop_early: bool = True) -> Decoded:
        return greedy_search(model, features, mask, eval_config.max_len, eval_config.min_len, stop_early)


@register_search
class SampleSearch(Search):
    """eval.samples drawn captions per clip, the best log-probability per word wins; seeded per call."""

    name, tag, fields = "sample", "sample", ("samples", "temperature", "top_p", "seed")

    def run(self, model, features, mask, eval_config, stop_early: bool = True) -> Decoded:
        e = eval_config
        generator = torch.Generator(device=features.device).manual_seed(e.seed)
        choose = sampled(e.temperature, e.top_p, generator, policy_log_probs=False)
        with torch.no_grad():
            rows = decode_rows(model, features, mask, e.samples, choose, e.max_len, e.min_len, stop_early)
        per_word = (rows.total / rows.lengths).view(-1, e.samples)
        best = per_word.argmax(1) + torch.arange(per_word.shape[0], device=features.device) * e.samples
        return Decoded(rows.tokens[best], rows.total[best], rows.attention[best], rows.lengths[best])
