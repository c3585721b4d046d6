"""The in-process validation CIDEr-D (train.select_metric CIDEr-D): its value by hand, beside the
COCO scores or alone, and the checks of train.select_metric that let it run without Java."""
import math

import pytest
import torch

import config as config_module
import train as train_module
from evaluation import split_cider_d
from evaluation.cider_d import CiderD
from evaluation.coco import PER_VIDEO_KEY
from evaluation.predictions import caption_videos, evaluate
from evaluation.split_cider_d import CIDER_D, add_cider_d, caption_ids, score_split
from loader.captions import tokenized_captions
from loader.dataset import VideoSplit
from loader.vocabulary import EOS_ID, PAD_ID, UNK, UNK_ID, Vocabulary
from tests.tiny import tiny_clips, tiny_model
from utils import DataError

# tests/test_cider_d.py's two clips, as raw strings ("dog" is outside the vocabulary): the
# loader's transforms lower-case them and drop the punctuation.
VOCAB = Vocabulary.build([["a", "cat", "man", "the"]])
LOADER = config_module.build("Demo").loader


def two_clips(references=(["A cat.", "a dog"], ["a man", "Man, man man!"])) -> VideoSplit:
    return VideoSplit(name="val", video_ids=["v0", "v1"], features=torch.zeros(2, 1, 1),
                      frame_mask=torch.ones(2, 1, dtype=torch.bool), references=list(references))


def predictions(*captions) -> list:
    return [{"video_id": f"v{i}", "caption": c} for i, c in enumerate(captions)]


def test_the_split_score_is_cider_d_x100_with_document_frequencies_from_the_split():
    # By hand (tests/test_cider_d.py): 2 documents, so idf = log 2 for the words of one clip and 0
    # for "a"; "a cat" scores 2.5 on clip 0 and "man man" (5 + 20 p) / 8 on clip 1, p = exp(-1/72).
    p = math.exp(-1 / 72)
    corpus, per_video = score_split(predictions("a cat", "man man"), two_clips(), VOCAB, LOADER)
    assert per_video == pytest.approx({"v0": 250.0, "v1": 100 * (5 + 20 * p) / 8})
    assert corpus == pytest.approx((250.0 + 100 * (5 + 20 * p) / 8) / 2)
    # <unk> is a word that matches nothing, not the out-of-vocabulary "dog"; the order of the
    # predictions does not matter
    _, per_video = score_split([{"video_id": "v1", "caption": "man man"},
                                {"video_id": "v0", "caption": f"a {UNK}"}], two_clips(), VOCAB, LOADER)
    assert per_video == pytest.approx({"v0": 0.0, "v1": 100 * (5 + 20 * p) / 8})


def test_decoded_captions_go_back_to_the_word_ids_the_model_said():
    ids = caption_ids(["a cat", f"man {UNK} the", ""], VOCAB)
    a, cat, man, the = (VOCAB.index[w] for w in ("a", "cat", "man", "the"))
    assert ids.tolist() == [[a, cat, EOS_ID, PAD_ID], [man, UNK_ID, the, EOS_ID],
                            [EOS_ID, PAD_ID, PAD_ID, PAD_ID]]
    assert [VOCAB.decode(row) for row in ids] == ["a cat", f"man {UNK} the", ""]


def test_it_joins_the_coco_scores_without_touching_them():
    scores = {"CIDEr": 71.0, PER_VIDEO_KEY: {"v0": {"CIDEr": 70.0}, "v1": {"CIDEr": 72.0}}}
    add_cider_d(scores, predictions("a cat", "a man"), two_clips(), VOCAB, LOADER)
    assert scores["CIDEr"] == 71.0 and set(scores) == {"CIDEr", CIDER_D, PER_VIDEO_KEY}
    assert scores[PER_VIDEO_KEY]["v0"] == {"CIDEr": 70.0, CIDER_D: pytest.approx(250.0)}
    assert scores[CIDER_D] == pytest.approx(sum(v[CIDER_D] for v in scores[PER_VIDEO_KEY].values()) / 2)


def test_a_video_without_references_is_named():
    with pytest.raises(DataError, match=r"(?s)CIDEr-D.*val split.*v1.*--train.select_metric loss"):
        score_split(predictions("a cat", "a man"), two_clips((["a cat"], ["?!"])), VOCAB, LOADER)


class StubCocoScorer:
    """A COCO scorer's answer without Java: one corpus number and one per video."""

    def score(self, references, hypotheses):
        return {"CIDEr": 1.0, PER_VIDEO_KEY: {vid: {"CIDEr": 1.0} for vid in hypotheses}}


@pytest.mark.parametrize("select_metric", [CIDER_D, "CIDEr"])
def test_evaluate_adds_cider_d_of_the_decoded_captions_when_it_is_selected(select_metric):
    model, config = tiny_model(vocab_size=len(VOCAB), **{"train.select_metric": select_metric,
                                                         "eval.beam_size": 2, "eval.max_len": 4})
    features, mask = tiny_clips()
    videos = VideoSplit(name="val", video_ids=["x", "y", "z"], features=features, frame_mask=mask,
                        references=[["a cat", "the cat"], ["a man"], ["the man", "a man a cat"]])
    scores, found = evaluate(model, videos, VOCAB, config, StubCocoScorer())
    assert scores["CIDEr"] == 1.0
    if select_metric != CIDER_D:
        assert CIDER_D not in scores
        return
    # the same captions as decoding them again, scored by CiderD on the split's references
    captions = [p["caption"] for p in caption_videos(model, videos, VOCAB, config.eval, 16)]
    assert [p["caption"] for p in found] == captions
    expected = CiderD(tokenized_captions(videos.references, config.loader), VOCAB).score(
        caption_ids(captions, VOCAB), torch.arange(3)) * 100
    assert [scores[PER_VIDEO_KEY][v][CIDER_D] for v in "xyz"] == pytest.approx(expected.tolist(), rel=1e-6)
    assert scores[CIDER_D] == pytest.approx(float(expected.double().mean()), rel=1e-6)
    assert scores[CIDER_D] > 0                 # a caption does overlap its references


def test_select_metric_cider_d_needs_no_coco_metric():
    for metrics in ([], ["Bleu", "CIDEr"]):
        config = config_module.build("Demo", **{"eval.metrics": metrics, "train.select_metric": CIDER_D})
        train_module.check_select_metric(config)
        assert split_cider_d.wanted(config)
    config = config_module.build("Demo", **{"eval.metrics": [], "train.select_metric": "CIDEr"})
    with pytest.raises(config_module.ConfigError, match="--train.select_metric CIDEr-D"):
        train_module.check_select_metric(config)
    config = config_module.build("Demo", **{"eval.metrics": ["Bleu"], "train.select_metric": "CIDEr"})
    with pytest.raises(config_module.ConfigError, match="'CIDEr-D'"):
        train_module.check_select_metric(config)
    assert not split_cider_d.wanted(config)
