"""bench/msvd_corpus.py: an MSVD-shaped corpus with random features, prepared by splits.MSVD."""
import json

import h5py

from bench import msvd_corpus
from splits.layout import corpus_paths


def test_reduced_corpus_keyed_by_clip_id_is_prepared_by_splits_msvd(tmp_path, capsys):
    root = str(tmp_path)
    assert msvd_corpus.main(["--out", root, "--videos", "3", "--feature_size", "8",
                             "--min_frames", "5", "--max_frames", "9"]) == 0
    paths = corpus_paths(root, "MSVD")
    with h5py.File(paths.feature_file("MSVD", "ResNet152")) as features:
        assert len(features) == 9 and "vid1" not in features       # YouTube clip ids
        assert all(d.shape[1] == 8 and 5 <= d.shape[0] <= 9 and d.dtype == "float32"
                   for d in features.values())
    for split, first in (("train", 1), ("val", 1201), ("test", 1301)):
        videos = json.loads(open(paths.split_json(split)).read())["videos"]
        assert [v["id"] for v in videos] == [f"vid{n}" for n in range(first, first + 3)]
        assert all(v["captions"] for v in videos)
    assert "train         3 videos" in capsys.readouterr().out


def test_every_official_clip_by_default():
    vids = msvd_corpus.chosen_vids(None)
    assert len(vids) == 1970 and vids[0] == "vid1" and vids[-1] == "vid1970"
    assert msvd_corpus.chosen_vids(2) == ["vid1", "vid2", "vid1201", "vid1202", "vid1301", "vid1302"]
