"""The evaluation page run.py writes: its data against the files it shows, and the page itself in
headless Chromium (rows, sorting, filtering, a word's attention, the comparison of two searches)."""
import base64
import io
import json
import shutil
from html.parser import HTMLParser

import pytest

import captioning.page as page_module
import run as run_module
import train as train_module
from bench.page import dump_dom, find_chromium
from evaluation.coco import PER_VIDEO_KEY
from evaluation.predictions import numeric
from evaluation.scorer import why_no_scoring
from tests import small_demo
from tests.devices import TRAIN_DEVICE
from tests.small_demo import build_small_demo, single_thread

SMALL = {"model.hidden_size": 16, "model.embedding_size": 8, "model.attention_size": 8,
         "loader.batch_size": 20, "loader.eval_batch_size": 16, "eval.beam_size": 3,
         "eval.max_len": 8, "train.epochs": 1, "train.select_metric": "CIDEr-D",
         "train.device": TRAIN_DEVICE}
NO_COCO = ["--eval.metrics", ""] if why_no_scoring() else []
needs_chromium = pytest.mark.skipif(find_chromium() is None,
                                    reason="headless Chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def evaluations(tmp_path_factory):
    """(beam folder, greedy folder) of run.py on a small demo test split, from a one-epoch model."""
    root = build_small_demo(tmp_path_factory, (30, 6, 12))
    runs = tmp_path_factory.mktemp("runs")
    config = small_demo.small_config(SMALL, root, runs, **({"eval.metrics": []} if NO_COCO else {}))
    with single_thread():
        train_module.train(config)
        checkpoint = runs / train_module.run_id(config) / "best.pt"
        folders = []
        for search in ("beam", "greedy"):
            folder = runs / search
            status = run_module.main([str(a) for a in ["--checkpoint", checkpoint, "--out", folder, "--eval.search", search] + NO_COCO])
            assert status == 0
            folders.append(folder)
    return tuple(folders)


def load(folder, name):
    return json.loads((folder / f"test_{name}.json").read_text())


def test_page_holds_every_video_its_scores_and_attention(evaluations):
    folder = evaluations[0]
    data = page_module.read_page(str(folder / "test_page.html"))
    predictions, scores = load(folder, "predictions"), load(folder, "scores")
    assert [v["id"] for v in data["videos"]] == [p["video_id"] for p in predictions]
    assert data["runs"][0]["scores"] == {k: round(v, 2) for k, v in numeric(scores).items()}
    assert data["runs"][0]["corpus"] == "Demo" and data["runs"][0]["search"]["search"] == "beam"
    assert "CIDEr-D" in data["metrics"] and (NO_COCO or "CIDEr" in data["metrics"])
    for video, prediction in zip(data["videos"], predictions):
        run = video["runs"][0]
        assert video["references"] == prediction["references"] and run["caption"] == prediction["caption"]
        assert video["category"]               # the demo's clip kind
        expected = scores[PER_VIDEO_KEY][video["id"]]
        assert run["scores"] == {m: round(expected[m], 2) for m in data["metrics"]}
        assert len(run["attention"]) == len(run["caption"].split()) + 1     # each word and <eos>
        for row in run["attention"]:
            assert len(row) == len(run["frames"])
            assert abs(sum(row) / data["attention_scale"] - 1) <= 0.0005 * len(row) + 1e-9
        from PIL import Image
        kind, encoded = run["thumbs"].split(";base64,")
        strip = Image.open(io.BytesIO(base64.b64decode(encoded)))
        assert kind == f"data:image/{strip.format.lower()}" and strip.width == len(run["frames"]) * data["thumb_width"]


class Dom(HTMLParser):
    """The rows (in page order), the selected word and its bars, the count, of a dumped DOM."""

    def __init__(self, text):
        super().__init__()
        self.rows, self.hidden, self.bars, self.selected, self.ready, self.count, self._in_count = [], set(), [], [], None, "", False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "body":
            self.ready = a.get("data-ready")
        if "row" in classes:
            self.rows.append(a["data-video"])
            if "hidden" in a:
                self.hidden.add(a["data-video"])
        if tag == "i" and "data-weight" in a:
            self.bars.append((self.rows[-1], float(a["data-weight"])))
        if "sel" in classes:
            self.selected.append((self.rows[-1], int(a["data-run"]), int(a["data-word"])))
        self._in_count = a.get("id") == "count"

    def handle_endtag(self, tag):
        self._in_count = False

    def handle_data(self, data):
        if self._in_count:
            self.count += data


@needs_chromium
def test_page_in_chromium_rows_sorting_filter_and_attention(evaluations):
    path = evaluations[0] / "test_page.html"
    data = page_module.read_page(str(path))
    videos = data["videos"]
    plain = Dom(dump_dom(path))
    assert plain.ready is not None and plain.rows == [v["id"] for v in videos] and not plain.hidden
    assert plain.count == f"{len(videos)} of {len(videos)} videos"

    metric = "CIDEr" if "CIDEr" in data["metrics"] else "CIDEr-D"
    chosen = videos[3]
    word = len(chosen["runs"][0]["caption"].split()) - 1
    view = Dom(dump_dom(path, f"sort={metric}&dir=asc&word={chosen['id']}.0.{word}"))
    by_score = sorted(range(len(videos)), key=lambda i: (videos[i]["runs"][0]["scores"][metric], i))
    assert view.rows == [videos[i]["id"] for i in by_score]
    assert view.selected == [(chosen["id"], 0, word)]
    weights = [w / data["attention_scale"] for w in chosen["runs"][0]["attention"][word]]
    assert view.bars == [(chosen["id"], pytest.approx(w)) for w in weights]

    term = chosen["runs"][0]["caption"].split()[0]
    filtered = Dom(dump_dom(path, f"q={term}&in=caption"))
    having = {v["id"] for v in videos if term in v["runs"][0]["caption"].split()}
    assert set(filtered.rows) - filtered.hidden == having
    category = videos[0]["category"]
    of_category = Dom(dump_dom(path, f"cat={category}"))
    assert set(of_category.rows) - of_category.hidden == {v["id"] for v in videos if v["category"] == category}


@needs_chromium
def test_comparison_page_lists_the_videos_whose_captions_differ(evaluations, tmp_path, capsys):
    beam, greedy = evaluations
    out = tmp_path / "compare.html"
    assert page_module.main(["compare", str(beam), str(greedy), "--out", str(out)]) == 0
    data = page_module.read_page(str(out))
    a, b = load(beam, "predictions"), load(greedy, "predictions")
    differ = {p["video_id"] for p, q in zip(a, b) if p["caption"] != q["caption"]}
    assert [[r["caption"] for r in v["runs"]] for v in data["videos"]] == [[p["caption"], q["caption"]]
                                                                           for p, q in zip(a, b)]
    dom = Dom(dump_dom(out))
    assert set(dom.rows) - dom.hidden == differ and len(dom.rows) == len(a)
    metric = "CIDEr" if "CIDEr" in data["metrics"] else "CIDEr-D"
    change = {v["id"]: abs(v["runs"][1]["scores"][metric] - v["runs"][0]["scores"][metric]) for v in data["videos"]}
    shown = [vid for vid in dom.rows if vid not in dom.hidden]
    assert [change[vid] for vid in shown] == sorted((change[vid] for vid in shown), reverse=True)
    everything = Dom(dump_dom(out, "diff="))
    assert not everything.hidden


def test_comparison_from_predictions_files_and_of_other_videos(evaluations, tmp_path, capsys):
    beam, greedy = evaluations
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("predictions", "scores"):
        if (greedy / f"test_{name}.json").exists():
            shutil.copy(greedy / f"test_{name}.json", bare)
    data = page_module.compare(page_module.load_evaluation(str(beam), "test"),
                               page_module.load_evaluation(str(bare), "test"))
    assert [v["runs"][1]["caption"] for v in data["videos"]] == [p["caption"] for p in load(greedy, "predictions")]
    assert "attention" not in data["videos"][0]["runs"][1]
    fewer = load(greedy, "predictions")[1:]
    (bare / "test_predictions.json").write_text(json.dumps(fewer))
    assert page_module.main(["compare", str(beam), str(bare), "--out", str(tmp_path / "c.html")]) == 2
    assert "not evaluations of the same videos" in capsys.readouterr().err
    assert page_module.main(["compare", str(beam), str(tmp_path), "--out", str(tmp_path / "c.html")]) == 2
    assert "test_predictions.json" in capsys.readouterr().err and not (tmp_path / "c.html").exists()


def test_a_caption_cannot_end_the_pages_script(tmp_path):
    data = {"runs": [{"checkpoint": "x", "corpus": "Demo", "split": "test", "search": {}, "scores": {}}],
            "metrics": [], "attention_scale": 1000, "thumb_width": 32,
            "videos": [{"id": "v</script><b>", "category": None, "references": ["a </script> b"],
                        "runs": [{"caption": "<!-- x", "scores": {}}]}]}
    page_module.write_page(str(tmp_path / "p.html"), data)
    assert "</script><b>" not in (tmp_path / "p.html").read_text()
    assert page_module.read_page(str(tmp_path / "p.html")) == data
