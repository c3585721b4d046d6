"""COCO caption metrics: same numbers as pycocoevalcap, one METEOR process, clear failures."""
import json
import shutil
import sys

import pytest

from evaluation.coco import CaptionScorer, MetricError, PER_VIDEO_KEY, _MeteorProcess

pytestmark = pytest.mark.skipif(shutil.which("java") is None,
                                reason="the caption metrics need Java")

# Raw captions as annotators write them: capitals, punctuation, odd spacing.
REFERENCES = {
    "vid1": ["A man is playing a guitar.", "A MAN PLAYS THE GUITAR!", "Someone is strumming, a guitar."],
    "vid2": ["A woman is slicing an onion.", "A lady cuts onions...", "Someone chops an onion; quickly"],
    "vid3": ["A cat is jumping into a box.", "The kitten jumps in the box?", "A cat plays, with a box."],
    "vid4": ["Two dogs run on the beach.", "Dogs are running on sand.", "Two puppies play at the seaside."],
}
HYPOTHESES = {
    "vid1": "a man is playing a guitar",
    "vid2": "A woman is cutting an onion.",
    "vid3": "a dog is running",
    "vid4": "two dogs are running on the beach",
}
ALL_KEYS = ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr"]


@pytest.fixture(scope="module")
def scorer():
    with CaptionScorer() as built:
        yield built


def pycocoevalcap_directly(references, hypotheses):
    """The reference numbers: pycocoevalcap's own classes, the way its COCOEvalCap uses them."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({v: [{"caption": c} for c in cs] for v, cs in references.items()})
    res = tokenizer.tokenize({v: [{"caption": hypotheses[v]}] for v in references})
    scores = {}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    for n in range(4):
        scores[f"Bleu_{n + 1}"] = bleu[n]
    meteor = Meteor()
    scores["METEOR"], _ = meteor.compute_score(gts, res)
    del meteor  # its __del__ stops its JVM
    scores["ROUGE_L"], _ = Rouge().compute_score(gts, res)
    scores["CIDEr"], per_video_cider = Cider().compute_score(gts, res)
    return {k: 100.0 * float(v) for k, v in scores.items()}, list(100.0 * per_video_cider)


def test_scores_equal_pycocoevalcap_times_100(scorer):
    corpus = scorer.score(REFERENCES, HYPOTHESES)
    per_video = corpus.pop(PER_VIDEO_KEY)
    expected, expected_cider = pycocoevalcap_directly(REFERENCES, HYPOTHESES)
    assert list(corpus) == ALL_KEYS
    for key in ALL_KEYS:
        assert corpus[key] == pytest.approx(expected[key], rel=1e-9, abs=1e-9), key
    assert [per_video[v]["CIDEr"] for v in REFERENCES] == pytest.approx(expected_cider)
    # Sanity of the scale: a near-perfect example scores tens, not fractions.
    assert 10 < corpus["Bleu_4"] < 100 and 10 < corpus["CIDEr"]


def test_per_video_cider_averages_to_corpus_cider(scorer):
    corpus = scorer.score(REFERENCES, HYPOTHESES)
    per_video = corpus[PER_VIDEO_KEY]
    assert set(per_video) == set(REFERENCES)
    assert all(set(scores) == set(ALL_KEYS) for scores in per_video.values())
    mean_cider = sum(per_video[v]["CIDEr"] for v in per_video) / len(per_video)
    assert mean_cider == pytest.approx(corpus["CIDEr"])
    assert per_video["vid1"]["CIDEr"] > per_video["vid3"]["CIDEr"]  # exact vs wrong caption
    assert json.loads(json.dumps(corpus)) == corpus  # the run saves it as <split>_scores.json


def test_scoring_twice_reuses_the_meteor_process(scorer):
    pid = scorer.meteor_pid
    first = scorer.score(REFERENCES, HYPOTHESES)
    second = scorer.score(REFERENCES, HYPOTHESES)
    subset = {v: REFERENCES[v] for v in ("vid1", "vid2")}
    third = scorer.score(subset, {v: HYPOTHESES[v] for v in subset})
    assert first == second
    assert third["METEOR"] != first["METEOR"]
    assert scorer.meteor_pid == pid and scorer._meteor.process.poll() is None


def test_empty_and_odd_hypotheses_do_not_crash(scorer):
    hypotheses = dict(HYPOTHESES, vid2="", vid3="a cat|||jumps\ninto\r a box")
    corpus = scorer.score(REFERENCES, hypotheses)
    per_video = corpus.pop(PER_VIDEO_KEY)
    assert per_video["vid2"]["METEOR"] == 0.0 and per_video["vid2"]["CIDEr"] == 0.0
    assert per_video["vid3"]["METEOR"] > 0.0
    assert all(0.0 <= value <= 1000.0 for value in corpus.values())


def test_mismatched_video_sets_raise(scorer):
    with pytest.raises(MetricError, match="without a hypothesis"):
        scorer.score(REFERENCES, {v: HYPOTHESES[v] for v in ("vid1", "vid2")})
    with pytest.raises(MetricError, match="without references"):
        scorer.score(REFERENCES, dict(HYPOTHESES, vid99="a cat"))
    with pytest.raises(MetricError, match="non-empty list of strings"):
        scorer.score(dict(REFERENCES, vid1="a man plays"), HYPOTHESES)
    with pytest.raises(MetricError, match="must be one string"):
        scorer.score(REFERENCES, dict(HYPOTHESES, vid1=["a man plays"]))


def test_metric_subset_and_unknown_metric():
    with CaptionScorer(metrics=["CIDEr", "Bleu"]) as cider_only:
        assert cider_only.meteor_pid is None  # no JVM kept for METEOR when it is not asked for
        corpus = cider_only.score(REFERENCES, HYPOTHESES)
    assert list(corpus) == ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "CIDEr", PER_VIDEO_KEY]
    with pytest.raises(MetricError, match="unknown metrics"):
        CaptionScorer(metrics=["SPICE"])


@pytest.mark.parametrize("hide_java", ["empty PATH", "which returns None"])
def test_missing_java_gives_the_fix(monkeypatch, tmp_path, hide_java):
    if hide_java == "empty PATH":
        monkeypatch.setenv("PATH", str(tmp_path))
    else:
        monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    with pytest.raises(MetricError, match="apt-get install default-jre-headless") as error:
        CaptionScorer()
    assert "METEOR" in str(error.value) and "Java" in str(error.value)


def test_missing_pycocoevalcap_gives_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "pycocoevalcap.bleu.bleu", None)   # import fails as if absent
    with pytest.raises(MetricError, match="pip install -r requirements.txt"):
        CaptionScorer()


def test_dead_meteor_process_is_an_error_not_a_zero():
    scorer = CaptionScorer(metrics=["METEOR"])
    scorer._meteor.process.kill()
    scorer._meteor.process.wait()
    with pytest.raises(MetricError, match="METEOR process is no longer running"):
        scorer.score(REFERENCES, HYPOTHESES)
    with pytest.raises(MetricError, match="create a new CaptionScorer"):  # stays an error
        scorer.score(REFERENCES, HYPOTHESES)
    scorer.close()  # closing after a failure is fine


def test_close_stops_meteor():
    with CaptionScorer(metrics=["METEOR"]) as scorer:
        process = scorer._meteor.process
        assert process.poll() is None
    assert process.poll() is not None
    with pytest.raises(MetricError, match="closed"):
        scorer.score(REFERENCES, HYPOTHESES)


# The protocol guards, with stand-in processes instead of java (fast and deterministic).
def test_unparsable_meteor_answer_is_explained():
    garbage = "import sys\nfor line in sys.stdin:\n    print('Exception in thread main', flush=True)"
    with pytest.raises(MetricError, match="could not parse the METEOR statistics line"):
        _MeteorProcess(command=[sys.executable, "-c", garbage])


def test_silent_meteor_times_out_instead_of_hanging():
    with pytest.raises(MetricError, match="no answer .* within"):
        _MeteorProcess(timeout_s=0.5, command=[sys.executable, "-c", "import time; time.sleep(30)"])


def test_meteor_dying_mid_answer_quotes_its_stderr():
    crash = "import sys\nsys.stdin.readline()\nsys.stderr.write('java.lang.OutOfMemoryError')\nsys.exit(1)"
    with pytest.raises(MetricError, match="exited while answering.*OutOfMemoryError"):
        _MeteorProcess(command=[sys.executable, "-c", crash])
