"""splits.MSVD and splits.MSR-VTT: the real corpora's official counts, and a clear error for bad input.

Feature files are tiny (2-6 frames x 4 dims a video), written into tmp_path.
"""
import gzip
import importlib
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

import config
from splits.corpus import shipped_dir
from utils import DataError

MSVD = importlib.import_module("splits.MSVD")
MSRVTT = importlib.import_module("splits.MSR-VTT")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), "shared", "data")
CSV_FIXTURE = os.path.join(REPO, "tests", "fixtures", "msvd_corpus_small.csv")


def real_annotations(corpus):
    """The originals beside the repo when present (plain .json), else the shipped copies (.json.gz)."""
    path = os.path.join(SHARED, corpus)
    return path if os.path.isdir(path) else None


def make_config(corpus, data_root, backbones=("ResNet152",)):
    return config.build(corpus, **{"corpus.data_root": str(data_root),
                                   "features.backbones": list(backbones)})


def write_features(data_root, corpus, backbone, keys, frames=None, dim=4):
    """One dataset per key, 2-6 frames (or frames[key]); returns {key: array}."""
    folder = os.path.join(data_root, corpus, "features")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(len(keys))
    arrays = {}
    with h5py.File(os.path.join(folder, f"{corpus}_{backbone}.hdf5"), "w") as f:
        for i, key in enumerate(keys):
            n = (frames or {}).get(key, 2 + i % 5)
            arrays[key] = f[key] = rng.standard_normal((n, dim)).astype(np.float32)
    return arrays


def read_back(data_root, corpus, split, backbone, vid):
    with h5py.File(os.path.join(data_root, corpus, "prepared", f"{split}_{backbone}.hdf5"), "r") as f:
        return f[vid][()]


def counts(records):
    return {split: (len(r["videos"]), sum(len(v["captions"]) for v in r["videos"]))
            for split, r in records.items()}


def msvd_mapping():
    path = os.path.join(shipped_dir("MSVD"), "youtube_mapping.txt")
    with open(path) as handle:
        return dict(line.split() for line in handle if line.strip())  # clip -> vidN


# ---------------------------------------------------------------- real corpora, official counts

def test_msvd_english_release_official_split_vid_keys(tmp_path):
    arrays = write_features(tmp_path, "MSVD", "ResNet152", [f"vid{n}" for n in range(1, 1971)])
    records = MSVD.prepare(make_config("MSVD", tmp_path), annotations_dir=real_annotations("MSVD"))
    assert counts(records) == {"train": (1200, 48774), "val": (100, 4290), "test": (670, 27763)}
    ids = {split: [v["id"] for v in r["videos"]] for split, r in records.items()}
    assert ids["train"][0] == "vid1" and ids["val"][0] == "vid1201" and ids["test"][-1] == "vid1970"
    video = records["test"]["videos"][0]
    assert video["captions"][0] == "a boy playing with dog" and video["n_frames"] == len(arrays["vid1301"])
    np.testing.assert_array_equal(read_back(tmp_path, "MSVD", "test", "ResNet152", "vid1301"),
                                  arrays["vid1301"])
    on_disk = json.load(open(tmp_path / "MSVD" / "prepared" / "val.json"))
    assert on_disk["backbones"]["ResNet152"]["dim"] == 4 and len(on_disk["videos"]) == 100


def test_msvd_shipped_annotations_match_the_originals(tmp_path):
    write_features(tmp_path, "MSVD", "ResNet152", [f"vid{n}" for n in range(1, 1971)])
    shipped = MSVD.prepare(make_config("MSVD", tmp_path))  # default: the copy in data/MSVD/annotations
    assert counts(shipped) == {"train": (1200, 48774), "val": (100, 4290), "test": (670, 27763)}


def test_msvd_features_keyed_by_clip_id_or_vid_per_file(tmp_path):
    mapping = msvd_mapping()
    by_clip = write_features(tmp_path, "MSVD", "Appearance", list(mapping))
    frames = {vid: len(by_clip[clip]) for clip, vid in mapping.items()}
    by_vid = write_features(tmp_path, "MSVD", "Motion", list(frames), frames=frames, dim=3)
    records = MSVD.prepare(make_config("MSVD", tmp_path, ("Appearance", "Motion")))
    assert counts(records)["val"] == (100, 4290)
    clip = "bQJQGoJF7_k_162_169"  # vid1201: a YouTube id with '_' in it
    np.testing.assert_array_equal(read_back(tmp_path, "MSVD", "val", "Appearance", "vid1201"), by_clip[clip])
    np.testing.assert_array_equal(read_back(tmp_path, "MSVD", "val", "Motion", "vid1201"), by_vid["vid1201"])
    assert records["val"]["backbones"]["Motion"]["dim"] == 3


def test_msr_vtt_official_split_counts_and_categories(tmp_path):
    arrays = write_features(tmp_path, "MSR-VTT", "ResNet152", [f"video{n}" for n in range(10000)])
    records = MSRVTT.prepare(make_config("MSR-VTT", tmp_path), annotations_dir=real_annotations("MSR-VTT"))
    assert counts(records) == {"train": (6513, 130260), "val": (497, 9940), "test": (2990, 59800)}
    first = {split: r["videos"][0] for split, r in records.items()}
    assert [first[s]["id"] for s in ("train", "val", "test")] == ["video0", "video6513", "video7010"]
    assert first["train"]["category"] == 9 and first["test"]["category"] == 10  # vehicles/autos, howto
    assert {v["category"] for r in records.values() for v in r["videos"]} == set(range(20))
    np.testing.assert_array_equal(read_back(tmp_path, "MSR-VTT", "val", "ResNet152", "video6513"),
                                  arrays["video6513"])


def test_msr_vtt_reads_the_shipped_gzip_copy():
    corpus = MSRVTT.read_corpus(config.build("MSR-VTT", **{"corpus.data_root": "/nonexistent"}))
    assert {s: len(v) for s, v in corpus.videos.items()} == {"train": 6513, "val": 497, "test": 2990}


# ---------------------------------------------------------------- the raw CSV and small corpora

def test_msvd_csv_keeps_english_non_empty_mapped_rows(tmp_path):
    write_features(tmp_path, "MSVD", "ResNet152", ["vid1", "vid75", "vid1201", "vid1301", "vid1970"])
    corpus = MSVD.read_corpus(make_config("MSVD", tmp_path), csv=CSV_FIXTURE)
    records = MSVD.prepare(make_config("MSVD", tmp_path), csv=CSV_FIXTURE)
    captions = {v["id"]: v["captions"] for r in records.values() for v in r["videos"]}
    assert captions == {
        "vid1": ["A squirrel is eating a peanut.", "A chipmunk, small and brown, eats."],
        "vid75": ["A man is cooking."],
        "vid1201": ["A café owner pours coffee."],  # non-ASCII kept raw
        "vid1301": ["A boy plays with a dog."],
        "vid1970": ["Someone is slicing a tomato."],  # Start/End written as 5.0/20.0
    }
    notes = " | ".join(corpus.notes)
    assert "1 non-English" in notes and "1 empty" in notes and "1 clips not in youtube_mapping" in notes


def write_small_msvd(folder, sents=None, mapping=None):
    """A three-video MSVD annotation folder (vid1 train, vid1201 val, vid1301 test)."""
    os.makedirs(folder, exist_ok=True)
    mapping = mapping or "a-b_c_1_2 vid1\nd_e-f_3_4 vid1201\ng_5_6 vid1301\n"
    sents = sents or {"train": "vid1\ta dog runs\nvid1\t   \n", "val": "vid1201\ta café\n",
                      "test": "vid1301\ta cat sleeps\n"}
    with open(os.path.join(folder, "youtube_mapping.txt"), "w") as f:
        f.write(mapping)
    for split, text in sents.items():
        with open(os.path.join(folder, f"sents_{split}_lc_nopunc.txt"), "w", encoding="utf-8") as f:
            f.write(text)
    return str(folder)


def test_msvd_small_release_drops_empty_captions(tmp_path):
    annotations = write_small_msvd(tmp_path / "ann")
    write_features(tmp_path, "MSVD", "ResNet152", ["a-b_c_1_2", "vid1201", "g_5_6"])
    corpus = MSVD.read_corpus(make_config("MSVD", tmp_path), annotations)
    assert any("1 empty captions dropped" in note for note in corpus.notes)
    assert any(note.startswith("1967 videos of the official split have no caption")
               and "(train 1199, val 99, test 669;" in note for note in corpus.notes)
    records = MSVD.prepare(make_config("MSVD", tmp_path), annotations)
    assert counts(records) == {"train": (1, 1), "val": (1, 1), "test": (1, 1)}
    assert records["val"]["videos"][0]["captions"] == ["a café"]


def write_small_msr_vtt(folder, gz=True, train_val=None, test=None):
    os.makedirs(folder, exist_ok=True)
    train_val = train_val or {
        "videos": [{"video_id": "video0", "category": 9, "split": "train"},
                   {"video_id": "video6513", "category": "3", "split": "validate"}],
        "sentences": [{"video_id": "video0", "caption": "a car drives", "sen_id": 0},
                      {"video_id": "video0", "caption": "  ", "sen_id": 1},
                      {"video_id": "video6513", "caption": "un café à paris", "sen_id": 2}]}
    test = test or {"videos": [{"video_id": "video7010", "category": 10, "split": "test"}],
                    "sentences": [{"video_id": "video7010", "caption": "a how to", "sen_id": 3}]}
    for name, data in (("train_val_videodatainfo.json", train_val), ("test_videodatainfo.json", test)):
        path = os.path.join(folder, name + (".gz" if gz else ""))
        with (gzip.open(path, "wt") if gz else open(path, "w")) as f:
            json.dump(data, f)
    return str(folder)


def test_msr_vtt_small_corpus(tmp_path):
    annotations = write_small_msr_vtt(tmp_path / "ann")
    write_features(tmp_path, "MSR-VTT", "ResNet152", ["video0", "video6513", "video7010"])
    corpus = MSRVTT.read_corpus(make_config("MSR-VTT", tmp_path), annotations)
    assert corpus.notes == ["1 empty captions dropped"]
    records = MSRVTT.prepare(make_config("MSR-VTT", tmp_path), annotations)
    assert records["val"]["videos"] == [{"id": "video6513", "captions": ["un café à paris"],
                                         "category": 3, "n_frames": 3}]


def test_prepared_split_names_come_from_the_config(tmp_path):
    annotations = write_small_msr_vtt(tmp_path / "ann", gz=False)
    write_features(tmp_path, "MSR-VTT", "ResNet152", ["video0", "video6513", "video7010"])
    cfg = make_config("MSR-VTT", tmp_path)
    cfg.corpus.val_split = "validation"
    records = MSRVTT.prepare(cfg, annotations)
    assert set(records) == {"train", "validation", "test"}
    assert (tmp_path / "MSR-VTT" / "prepared" / "validation_ResNet152.hdf5").is_file()


# ---------------------------------------------------------------- command line

def test_command_line_overrides_and_summary(tmp_path, capsys):
    annotations = write_small_msr_vtt(tmp_path / "ann")
    write_features(tmp_path, "MSR-VTT", "A", ["video0", "video6513", "video7010"])
    write_features(tmp_path, "MSR-VTT", "B", ["video0", "video6513", "video7010"], dim=2)
    status = MSRVTT.main(["--annotations", annotations, "--corpus.data_root", str(tmp_path),
                          "--features.backbones", "A,B"])
    out = capsys.readouterr().out
    assert status == 0
    assert "A (D=4), B (D=2)" in out and "1 empty captions dropped" in out
    rows = [line.split()[:2] for line in out.splitlines()[1:4]]
    assert rows == [["train", "1"], ["val", "1"], ["test", "1"]]


def test_command_line_bad_input_exits_2_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "splits.MSR-VTT", "--annotations", str(tmp_path)],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "train_val_videodatainfo.json" in result.stderr and "Traceback" not in result.stderr


def test_command_line_rejects_another_corpus(tmp_path, capsys):
    assert MSVD.main(["--preset", "MSR-VTT", "--corpus.data_root", str(tmp_path)]) == 2
    assert "python -m splits.MSR-VTT" in capsys.readouterr().err


# ---------------------------------------------------------------- bad input: one DataError naming it

def raises(match, function, *args, **kwargs):
    with pytest.raises(DataError, match=match) as info:
        function(*args, **kwargs)
    return str(info.value)


def test_missing_annotation_files(tmp_path):
    os.makedirs(tmp_path / "empty")
    message = raises("youtube_mapping.txt", MSVD.prepare, make_config("MSVD", tmp_path),
                     str(tmp_path / "empty"))
    assert "data/MSVD/annotations" in message
    message = raises("train_val_videodatainfo.json", MSRVTT.prepare, make_config("MSR-VTT", tmp_path),
                     str(tmp_path / "empty"))
    assert "data/MSR-VTT/annotations" in message
    raises("nowhere", MSVD.prepare, make_config("MSVD", tmp_path), str(tmp_path / "nowhere"))
    raises("no-such.csv", MSVD.prepare, make_config("MSVD", tmp_path), csv=str(tmp_path / "no-such.csv"))


def test_malformed_msvd_annotations(tmp_path):
    cfg = make_config("MSVD", tmp_path)
    bad_sents = write_small_msvd(tmp_path / "a", sents={"train": "vid1\tok\nvid1 no tab here\n",
                                                        "val": "", "test": ""})
    raises(r"sents_train_lc_nopunc.txt line 2", MSVD.prepare, cfg, bad_sents)
    outside = write_small_msvd(tmp_path / "b", sents={"train": "vid2500\tx\n", "val": "", "test": ""})
    raises(r"line 1: vid2500 is outside", MSVD.prepare, cfg, outside)
    bad_mapping = write_small_msvd(tmp_path / "c", mapping="a_1_2 vid1\nnot-a-clip vid2\n")
    raises(r"youtube_mapping.txt line 2", MSVD.prepare, cfg, bad_mapping)
    bad_csv = tmp_path / "corpus.csv"
    bad_csv.write_text("VideoID\tStart\tEnd\tLanguage\tDescription\nx\t1\t2\tEnglish\thi\n")
    raises(r"corpus.csv is not the MSVD corpus CSV", MSVD.prepare, cfg, csv=str(bad_csv))
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(open(CSV_FIXTURE, encoding="utf-8").read().encode("latin-1", "replace"))
    raises(r"latin1.csv is not UTF-8", MSVD.prepare, cfg, csv=str(latin1))


def test_split_list_that_disagrees(tmp_path):
    folder = tmp_path / "ann"
    shutil.copytree(shipped_dir("MSVD"), folder)
    listed = json.load(open(folder / "valid.list"))
    json.dump(listed[:-1], open(folder / "valid.list", "w"))
    raises(r"valid.list disagrees with the official val split: 1 videos missing", MSVD.read_corpus,
           make_config("MSVD", tmp_path), str(folder))
    annotations = write_small_msr_vtt(tmp_path / "vtt")
    json.dump(["video0", "video1"], open(os.path.join(annotations, "train.list"), "w"))
    raises(r"train.list disagrees .* \['video1'\]", MSRVTT.read_corpus, make_config("MSR-VTT", tmp_path),
           annotations)


def test_malformed_msr_vtt_annotations(tmp_path):
    cfg = make_config("MSR-VTT", tmp_path)
    truncated = write_small_msr_vtt(tmp_path / "a", gz=False)
    path = os.path.join(truncated, "test_videodatainfo.json")
    text = open(path).read()
    open(path, "w").write(text[: len(text) // 2])
    raises(r"test_videodatainfo.json is not valid JSON \(line 1", MSRVTT.prepare, cfg, truncated)
    broken_gz = write_small_msr_vtt(tmp_path / "b")
    path = os.path.join(broken_gz, "train_val_videodatainfo.json.gz")
    compressed = open(path, "rb").read()
    open(path, "wb").write(compressed[: len(compressed) // 2])
    raises(r"train_val_videodatainfo.json.gz cannot be read", MSRVTT.prepare, cfg, broken_gz)
    no_category = write_small_msr_vtt(tmp_path / "c", test={
        "videos": [{"video_id": "video7010", "split": "test"}], "sentences": []})
    raises(r"test_videodatainfo.json.gz: videos\[0\].*integer category", MSRVTT.prepare, cfg, no_category)
    orphan = write_small_msr_vtt(tmp_path / "d", test={
        "videos": [{"video_id": "video7010", "category": 1, "split": "test"}],
        "sentences": [{"video_id": "video9999", "caption": "x", "sen_id": 9}]})
    raises(r"describes video video9999", MSRVTT.prepare, cfg, orphan)
    not_info = write_small_msr_vtt(tmp_path / "e", test={"videos": {}})
    raises(r"test_videodatainfo.json.gz has no 'videos' list", MSRVTT.prepare, cfg, not_info)


def test_feature_problems(tmp_path):
    annotations = write_small_msr_vtt(tmp_path / "ann")
    cfg = make_config("MSR-VTT", tmp_path, ("A", "B"))
    feature_file = str(tmp_path / "MSR-VTT" / "features" / "MSR-VTT_A.hdf5")
    raises(f"feature file {feature_file} does not exist", MSRVTT.prepare, cfg, annotations)

    write_features(tmp_path, "MSR-VTT", "A", ["video0", "video7010"])
    write_features(tmp_path, "MSR-VTT", "B", ["video0", "video6513", "video7010"])
    raises(r"1 of the 1 videos of the val split are missing from .*MSR-VTT_A.hdf5: video6513; extract",
           MSRVTT.prepare, cfg, annotations)
    assert not list((tmp_path / "MSR-VTT" / "prepared").glob("*.json"))  # no half-prepared corpus

    write_features(tmp_path, "MSR-VTT", "A", ["video0", "video6513", "video7010"], frames={"video0": 5})
    write_features(tmp_path, "MSR-VTT", "B", ["video0", "video6513", "video7010"], frames={"video0": 6})
    raises(r"video video0 has 5 frames in backbone A but 6 in B", MSRVTT.prepare, cfg, annotations)

    (tmp_path / "MSR-VTT" / "features" / "MSR-VTT_B.hdf5").write_bytes(b"not an hdf5 file")
    raises(r"MSR-VTT_B.hdf5 is not a readable HDF5 file", MSRVTT.prepare, cfg, annotations)


def test_msvd_feature_missing_names_the_video(tmp_path):
    annotations = write_small_msvd(tmp_path / "ann")
    write_features(tmp_path, "MSVD", "ResNet152", ["vid1", "g_5_6"])
    raises(r"of the val split are missing from .*MSVD_ResNet152.hdf5: vid1201", MSVD.prepare,
           make_config("MSVD", tmp_path), annotations)
