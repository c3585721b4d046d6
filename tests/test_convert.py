"""Features made by other tools import into the project's feature file, prepare and train; every bad
file is one line, and then nothing is written."""
import importlib
import os
import pickle
import shutil

import h5py
import numpy as np
import pytest

import config as config_module
import train as train_module
from extraction import convert
from splits.corpus import shipped_dir
from tests.small_demo import single_thread

SPLITS = {"train": ["vid1", "vid2", "vid3", "vid4", "vid5", "vid6"], "val": ["vid1201", "vid1202"],
          "test": ["vid1301", "vid1302"]}
VIDS = [vid for vids in SPLITS.values() for vid in vids]
D = 6
SMALL = {"model.hidden_size": 16, "model.embedding_size": 8, "model.attention_size": 8,
         "loader.batch_size": 4, "loader.eval_batch_size": 4, "eval.beam_size": 2, "eval.max_len": 6,
         "train.lr": 3e-3, "train.device": "cpu", "train.epochs": 1, "eval.metrics": [],
         "train.select_metric": "loss", "features.n_frames": 4, "loader.min_count": 1}
REAL_VGG16 = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "MSVD",
                          "sample_features_vgg16")


@pytest.fixture(scope="module")
def annotations(tmp_path_factory):
    """MSVD's own mapping with captions for a few videos of each split: a small MSVD."""
    folder = tmp_path_factory.mktemp("annotations")
    shutil.copy(os.path.join(shipped_dir("MSVD"), "youtube_mapping.txt"), folder)
    for split, vids in SPLITS.items():
        with open(folder / f"sents_{split}_lc_nopunc.txt", "w") as handle:
            for vid in vids:
                handle.write(f"{vid}\ta man is cooking\n{vid}\ta woman is singing a song\n")
    return str(folder)


@pytest.fixture(scope="module")
def clip_of(annotations):
    with open(os.path.join(annotations, "youtube_mapping.txt")) as handle:
        return {vid: clip for clip, vid in (line.split() for line in handle if line.strip())}


def features_of(index: int) -> np.ndarray:
    return np.random.default_rng(index).standard_normal((5 + index % 3, D))


def run_convert(capsys, source, root, annotations, *extra) -> tuple:
    status = convert.main([str(source), "--corpus.name", "MSVD", "--name", "Imported", "--every_n", "5",
                           "--corpus.data_root", str(root), "--annotations", annotations, *extra])
    captured = capsys.readouterr()
    return status, captured.err, captured.out


def output_of(root) -> str:
    return os.path.join(str(root), "MSVD", "features", "MSVD_Imported.hdf5")


def write_layout(layout: str, folder, clip_of: dict) -> str:
    """The features of VIDS as another tool writes them; the source to import."""
    folder.mkdir()
    if layout.startswith("hdf5"):
        path = str(folder / "features.h5")
        with h5py.File(path, "w") as handle:
            if layout == "hdf5_groups":
                for i, vid in enumerate(VIDS):
                    handle.create_dataset(f"features/{clip_of[vid]}", data=features_of(i))
            else:
                stacked = np.zeros((len(VIDS), 8, D))
                for i in range(len(VIDS)):
                    stacked[i, :len(features_of(i))] = features_of(i)
                handle["feats"] = stacked
                handle["video_ids"] = np.array([f"{clip_of[v]}.avi" for v in VIDS], dtype="S")
                handle["lengths"] = [len(features_of(i)) for i in range(len(VIDS))]
        return path
    for i, vid in enumerate(VIDS):
        name = clip_of[vid] if i % 2 else vid          # both kinds of MSVD names
        if layout == "v-iashin":
            np.save(folder / f"{name}_resnet.npy", features_of(i).astype(np.float32))
            np.save(folder / f"{name}_fps.npy", np.array(30.0))
            np.save(folder / f"{name}_timestamps_ms.npy", np.arange(5.0))
        elif layout == "avi.npy":
            np.save(folder / f"{name}.avi.npy", features_of(i))
        else:
            np.savez(folder / f"{name}.npz", features=features_of(i))
    return str(folder)


@pytest.mark.parametrize("layout", ["v-iashin", "avi.npy", "npz", "hdf5_groups", "hdf5_stacked"])
def test_each_layout_imports_prepares_and_trains(tmp_path, capsys, annotations, clip_of, layout):
    source = write_layout(layout, tmp_path / "source", clip_of)
    root = tmp_path / "data"
    status, err, out = run_convert(capsys, source, root, annotations)
    assert status == 0, err
    with h5py.File(output_of(root), "r") as written:
        assert sorted(written) == sorted(VIDS)
        assert written.attrs["sampling"] == "every_n=5" and written.attrs["feature_size"] == D
        for i, vid in enumerate(VIDS):
            np.testing.assert_allclose(written[vid][()], features_of(i), rtol=1e-6)
    prepare = importlib.import_module("splits.MSVD").main
    assert prepare(["--annotations", annotations, "--corpus.data_root", str(root),
                    "--features.backbones", "Imported"]) == 0, capsys.readouterr().err
    config = config_module.build("MSVD", **{**SMALL, "corpus.data_root": str(root),
                                            "features.backbones": ["Imported"],
                                            "train.run_root": str(tmp_path / "runs")})
    with single_thread():
        train_module.train(config)
    assert os.path.isfile(tmp_path / "runs" / train_module.run_id(config) / "best.pt")


def save(folder, name, value):
    np.save(folder / name, value, allow_pickle=True)


PROBLEMS = {   # what the bad file is, and words of its one line
    "a file with no corpus video": (lambda f: save(f, "notavideo.npy", features_of(0)), "no video of the corpus"),
    "a 1-D array": (lambda f: save(f, "vid1.npy", np.ones(D)), "1-D array of shape (6,)"),
    "a 3-D array": (lambda f: save(f, "vid1.npy", np.ones((1, 4, D))), "3-D array"),
    "NaN": (lambda f: save(f, "vid1.npy", np.full((3, D), np.nan)), "NaN or inf"),
    "inf": (lambda f: save(f, "vid1.npy", np.full((3, D), np.inf)), "NaN or inf"),
    "mixed feature sizes": (lambda f: save(f, "vid1.npy", np.ones((3, D + 1))), "mixed feature sizes"),
    "non-numeric data": (lambda f: save(f, "vid1.npy", np.array([["a"] * D] * 3)), "not numbers"),
    "a pickled object array": (lambda f: save(f, "vid1.npy", np.array([{"x": 1}], dtype=object)),
                               "--allow_pickle"),
    "a pickle file": (lambda f: pickle.dump(features_of(0), open(f / "vid1.pkl", "wb")), "--allow_pickle"),
    "two files of one video": (lambda f: save(f, "vid1_rgb.npy", features_of(0)), "are both video vid1"),
}


@pytest.mark.parametrize("problem", PROBLEMS)
def test_each_problem_is_one_line_and_nothing_is_written(tmp_path, capsys, annotations, problem):
    make, words = PROBLEMS[problem]
    folder = tmp_path / "source"
    folder.mkdir()
    for i, vid in enumerate(VIDS[1:], start=1):
        save(folder, f"{vid}.npy", features_of(i))
    if problem != "two files of one video":
        (folder / "vid1.npy").unlink(missing_ok=True)
    save(folder, "vid1.npy", features_of(0)) if problem in ("a file with no corpus video",
                                                            "two files of one video") else None
    make(folder)
    status, err, _ = run_convert(capsys, folder, tmp_path / "data", annotations)
    assert status == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("nothing was written")
    assert len(lines) == 2 and words in lines[0], err
    assert not os.path.exists(os.path.dirname(output_of(tmp_path / "data"))) or \
        os.listdir(os.path.dirname(output_of(tmp_path / "data"))) == []


def test_missing_corpus_videos_and_an_existing_file_are_refused(tmp_path, capsys, annotations):
    folder = tmp_path / "source"
    folder.mkdir()
    for i, vid in enumerate(VIDS[:-1]):
        save(folder, f"{vid}.npy", features_of(i))
    root = tmp_path / "data"
    status, err, _ = run_convert(capsys, folder, root, annotations)
    assert status == 2 and "1 of the 10 corpus videos have no features" in err and "vid1302" in err
    assert not os.path.exists(output_of(root))
    assert run_convert(capsys, folder, root, annotations, "--allow_missing")[0] == 0
    before = os.path.getmtime(output_of(root))
    status, err, _ = run_convert(capsys, folder, root, annotations, "--allow_missing")
    assert status == 2 and "exists" in err and os.path.getmtime(output_of(root)) == before


def test_pickles_are_read_when_allowed(tmp_path, capsys, annotations):
    folder = tmp_path / "source"
    folder.mkdir()
    for i, vid in enumerate(VIDS):
        with open(folder / f"{vid}.pkl", "wb") as handle:
            pickle.dump(features_of(i), handle)
    root = tmp_path / "data"
    assert run_convert(capsys, folder, root, annotations)[0] == 2
    status, err, _ = run_convert(capsys, folder, root, annotations, "--allow_pickle")
    assert status == 0, err
    with h5py.File(output_of(root), "r") as written:
        np.testing.assert_allclose(written["vid3"][()], features_of(2), rtol=1e-6)


def test_the_real_vgg16_arrays_import(tmp_path, capsys):
    if not os.path.isdir(REAL_VGG16):
        pytest.skip(f"the real VGG16 arrays are not in {REAL_VGG16}")
    status = convert.main([REAL_VGG16, "--corpus.name", "MSVD", "--name", "VGG16", "--n_frames", "80",
                           "--allow_missing", "--corpus.data_root", str(tmp_path)])
    assert status == 0, capsys.readouterr().err
    with h5py.File(tmp_path / "MSVD" / "features" / "MSVD_VGG16.hdf5", "r") as written:
        assert sorted(written) == ["vid1025", "vid1429", "vid1509", "vid184", "vid950"]
        assert written.attrs["sampling"] == "n_frames=80" and written.attrs["feature_size"] == 4096
        original = np.load(os.path.join(REAL_VGG16, "3qqEKTPxLNs_1_15.avi.npy"))
        np.testing.assert_allclose(written["vid184"][()], original, rtol=1e-6)


def test_an_interrupted_imports_leftover_is_started_afresh(tmp_path, capsys, annotations):
    folder = tmp_path / "source"
    folder.mkdir()
    for i, vid in enumerate(VIDS):
        save(folder, f"{vid}.npy", features_of(i))
    root = tmp_path / "data"
    os.makedirs(os.path.dirname(output_of(root)))
    with h5py.File(output_of(root) + ".partial", "w") as leftover:
        leftover["vid1"] = np.zeros((2, D + 3))
    status, err, _ = run_convert(capsys, folder, root, annotations)
    assert status == 0, err
    assert not os.path.exists(output_of(root) + ".partial")
    with h5py.File(output_of(root), "r") as written:
        np.testing.assert_allclose(written["vid1"][()], features_of(0), rtol=1e-6)
