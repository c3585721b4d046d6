import math
import random

import pytest
import torch
from pycocoevalcap.cider.cider import Cider

from evaluation.cider_d import CiderD
from tests.cider_reference import cider_d, document_frequency
from loader.vocabulary import EOS_ID, PAD_ID, UNK, UNK_ID, Vocabulary

# Two clips. "dog" is left out of the vocabulary on purpose: the model can only say <unk> for it.
REFERENCES = [[["a", "cat"], ["a", "dog"]],
              [["a", "man"], ["man", "man", "man"]]]
VOCAB = Vocabulary.build([["a", "cat", "man", "the"]])


def encode(captions: list, width: int = 6) -> torch.Tensor:
    """Token lists -> (N, width) ids ended by <eos> then <pad>, as the sampler gives them."""
    rows = torch.full((len(captions), width), PAD_ID, dtype=torch.long)
    for i, tokens in enumerate(captions):
        ids = [UNK_ID if t == UNK else VOCAB.index[t] for t in tokens] + [EOS_ID]
        rows[i, :len(ids)] = torch.tensor(ids)
    return rows


def scores(scorer, captions, clips):
    return scorer.score(encode(captions), torch.tensor(clips)).tolist()


def test_cider_d_matches_the_arithmetic_by_hand():
    # 2 documents: idf = log 2 (= L) for an n-gram of one clip, 0 for "a" (in both clips).
    # Two-word candidates have no 3- or 4-grams: those orders add 0 to the mean over 4 orders.
    # "a cat" vs clip 0: ref "a cat" gives similarity 1 for 1- and 2-grams (only "cat", "a cat"
    # weigh), ref "a dog" 0; equal lengths, no penalty: 10 * ((1 + 0)/2 + (1 + 0)/2) / 4 = 2.5.
    # "man man" vs clip 1: the candidate's vectors are man: 2L (norm 2L), "man man": L.
    #   ref "a man" (norm L): 1-grams min(2, 1) * 1 * L^2 / (2L * L) = 1/2, 2-grams 0, no penalty;
    #   ref "man man man" (1-gram norm 3L, 2-gram "man man" x2 norm 2L), penalty p = exp(-1/72):
    #   1-grams min(2, 3) * 3 L^2 / (2L * 3L) = 1, 2-grams min(1, 2) * 2 L^2 / (L * 2L) = 1;
    #   10 * ((1/2 + p)/2 + (0 + p)/2) / 4 = (5 + 20 p) / 8.
    p = math.exp(-1 / 72)
    scorer = CiderD(REFERENCES, VOCAB)
    got = scores(scorer, [["a", "cat"], ["man", "man"]], [0, 1])
    assert got == pytest.approx([2.5, (5 + 20 * p) / 8], rel=1e-6)
    # Without clipping and penalty (the original CIDEr): "man man" vs "a man" 1-grams
    # 2 * 1 L^2 / (2L * L) = 1, vs "man man man" 2 * 3 / 6 = 1 and 1 * 2 / 2 = 1:
    # 10 * ((1 + 1)/2 + (0 + 1)/2) / 4 = 3.75.
    plain = CiderD(REFERENCES, VOCAB, clipped=False, length_penalty=False)
    assert scores(plain, [["a", "cat"], ["man", "man"]], [0, 1]) == pytest.approx([2.5, 3.75], rel=1e-6)


def test_eos_pad_and_unk_in_candidates():
    scorer = CiderD(REFERENCES, VOCAB)
    p3 = math.exp(-1 / 72)          # a 3-word candidate against 2-word references
    candidates = encode([["a", "cat"], ["a", "cat"], ["a", UNK], ["a", "cat", UNK]])
    candidates[1, 3:] = torch.tensor([VOCAB.index["man"], VOCAB.index["man"], EOS_ID])
    got = scorer.score(candidates, torch.tensor([0, 0, 0, 0])).tolist()
    # row 1: the words after <eos> are ignored. row 2: <unk> never matches "dog", a word outside
    # the vocabulary (were it to match, the score would be 2.5). row 3: <unk> counts as a word:
    # 1-gram norm sqrt(2) L (cat, <unk>), 2-gram norm sqrt(2) L ("a cat", "cat <unk>"), both
    # similar to ref "a cat" by L^2 / (sqrt(2) L * L), with the length penalty of 3 vs 2 words.
    assert got == pytest.approx([2.5, 2.5, 0.0, 10 * 2 * p3 / math.sqrt(2) / 2 / 4], rel=1e-6)
    no_eos = torch.tensor([[VOCAB.index["a"], VOCAB.index["cat"]]])
    assert scorer.score(no_eos, torch.tensor([0])).tolist() == pytest.approx([2.5])
    assert scorer.score(torch.full((1, 3), PAD_ID), torch.tensor([1])).tolist() == [0.0]


def test_matches_pycocoevalcap_cider_when_df_comes_from_the_scored_references():
    # pycocoevalcap's Cider clips and applies the length penalty too (it is CIDEr-D); it counts
    # document frequencies over the clips it scores: our scorer built on those same references.
    references = [["a man is playing a guitar", "a man plays the guitar", "someone plays music"],
                  ["a woman is slicing an onion", "a woman cuts an onion", "onion being sliced"],
                  ["a cat is playing with a ball", "a kitten plays", "a cat plays a cat game"],
                  ["two men are fighting", "men fight in a ring", "a man is playing"]]
    candidates = ["a man is playing the guitar", "a woman is cutting an onion", "a cat a cat a cat",
                  "a man is playing"]
    tokens = [[r.split() for r in refs] for refs in references]
    vocab = Vocabulary.build([t for refs in tokens for t in refs] + [c.split() for c in candidates])
    expected = Cider().compute_score({i: refs for i, refs in enumerate(references)},
                                     {i: [c] for i, c in enumerate(candidates)})[1]
    rows = torch.full((4, 8), PAD_ID, dtype=torch.long)
    for i, c in enumerate(candidates):
        ids = vocab.encode(c.split()) + [EOS_ID]
        rows[i, :len(ids)] = torch.tensor(ids)
    got = CiderD(tokens, vocab).score(rows, torch.arange(4))
    assert got.tolist() == pytest.approx(expected.tolist(), rel=1e-5)
    unclipped = CiderD(tokens, vocab, clipped=False).score(rows, torch.arange(4))
    assert unclipped[2] > got[2] + 0.1      # "a cat a cat a cat": clipping is what holds it down


def random_caption(rng, words, low, high):
    return [rng.choice(words) for _ in range(rng.randint(low, high))]


@pytest.mark.parametrize("clipped,length_penalty,own_documents", [(True, True, False), (False, False, True),
                                                                  (True, False, True)])
def test_batched_scorer_equals_the_plain_python_definition(clipped, length_penalty, own_documents):
    rng = random.Random(7)
    words = ["w%d" % i for i in range(9)]
    vocab = Vocabulary.build([words[:7]])              # w7, w8 only ever appear in references
    references = [[random_caption(rng, words, 1, 7) for _ in range(rng.randint(1, 5))] for _ in range(6)]
    documents = ([[random_caption(rng, words, 1, 7) for _ in range(3)] for _ in range(9)] + references
                 if own_documents else references)
    scorer = CiderD(references, vocab, clipped=clipped, length_penalty=length_penalty,
                    document_references=documents if own_documents else None)
    clips = [c for c in range(6) for _ in range(3)]
    rng.shuffle(clips)
    width = 9
    candidates = torch.tensor([[rng.randrange(len(vocab)) for _ in range(width)] for _ in clips])
    candidates[candidates == PAD_ID] = UNK_ID          # <pad> only after <eos>; <bos> never
    candidates[candidates == 1] = UNK_ID
    got = scorer.score(candidates, torch.tensor(clips))
    df = document_frequency(documents, 4)
    for i, (row, clip) in enumerate(zip(candidates.tolist(), clips)):
        end = row.index(EOS_ID) if EOS_ID in row else len(row)
        tokens = [vocab.words[w] for w in row[:end]]
        expected = cider_d(tokens, references[clip], df, len(documents), clipped=clipped,
                           length_penalty=length_penalty)
        assert float(got[i]) == pytest.approx(expected, rel=1e-5, abs=1e-9)
    assert float(got.max()) > 0                       # the captions do overlap: not all zeros


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="at least one reference"):
        CiderD([[["a"]], []], VOCAB)
    scorer = CiderD(REFERENCES, VOCAB)
    with pytest.raises(ValueError, match="word ids"):
        scorer.score(torch.tensor([[len(VOCAB)]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="video_index"):
        scorer.score(torch.tensor([[4, 2]]), torch.tensor([0, 1]))
