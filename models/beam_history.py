"""What beam search (models/beam_search.py) keeps of each step, and the captions rebuilt from it.

Histories are back-pointers, one parent row per beam a step, rebuilt once at the end by
following each video's pointers from the row its caption ended at: a step costs one index then,
where copying every beam's history every step would cost several operators a step.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from loader.vocabulary import EOS_ID, PAD_ID


class BeamHistory:
    """What beam search keeps of each step, as back-pointers, and the captions rebuilt from it.

    Rows are numbered across all steps (step 0's rows first), with one extra "nothing" row at the
    end, whose parent is itself, whose word is <pad> and whose attention is zero.
    """

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

    def rebuild(self) -> tuple:
        """Each video's best hypothesis, as Decoded's fields (tokens, log_probs, attention,
        lengths): from the row it ended at, back through the parents.

        The hypothesis that ended at step e holds the words fed at steps 1..e, then <eos>, and
        the attention of its rows at steps 0..e. A step costs one index here; the rest is fixed.
        """
        batch, device = self.batch, self.device
        steps, scores, raws, beams = zip(*self.ends)
        # The earliest step of the best score, as beam search's strict "better than" kept it.
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
        # Position t holds the row of step t, read at e - t; positions after e read "nothing".
        offset = end_step.unsqueeze(1) - torch.arange(length + 1, device=device)
        rows = back.gather(1, torch.where(offset < 0, length, offset))
        tokens = word_of[rows[:, 1:]]                          # the word fed at t + 1 is said at t
        positions = torch.arange(length, device=device)
        tokens = torch.where(positions == end_step.unsqueeze(1), EOS_ID, tokens)
        return tokens, raw, attention_of[rows[:, :-1]], end_step + 1
