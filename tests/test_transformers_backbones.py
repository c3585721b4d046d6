"""CLIP and VideoMAE backbones (transformers) on the real MSVD clips of tests/fixtures/videos, with
tiny random-weight models saved as their published repositories are (tests/tiny_transformers.py).

Nothing is downloaded: HF_HUB_OFFLINE=1. Every transformers entry of the registry is extracted;
an appearance + motion corpus (CLIP-ViT-B-32 + VideoMAE-Base-K400) goes through splits.MSVD, a
small model is trained on it (and train.py runs two epochs on it), and run.py --video captions
the clip files with it.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

os.environ["HF_HUB_OFFLINE"] = "1"     # before transformers is imported: never wait on the network

import h5py
import numpy as np
import pytest
import torch

av = pytest.importorskip("av", reason="needs PyAV (pip install av) to read video files")

import config as config_module
import run as run_module
import train as train_module
from evaluation.predictions import caption_videos
from extraction import BACKBONES, build_backbone, extract_videos, features_for_video
from extraction.__main__ import main as extraction_main
from extraction.video import clip_window, read_frames
from loader.corpus import load_training_data
from loader.dataset import load_split
from models import checkpoints
from splits import MSVD as msvd
from splits.layout import corpus_paths, write_prepared
from tests import tiny_transformers as tiny
from tests.videos import CLIP_TO_VID, msvd_references, synthetic_video, train_until_it_recites
from utils import DataError

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO / "tests" / "fixtures" / "videos"
CLIPS = sorted(VIDEOS.glob("*.avi"))
FRAMES = {"WTf5EgVY5uU_124_128": 120, "j2Dhf-xFUxU_13_20": 106, "qvg9eM4Hmzk_4_10": 91}
EVERY_N = 10
TRANSFORMERS_BACKBONES = sorted(name for name, spec in BACKBONES.items() if spec.build is not None)
APPEARANCE, MOTION = "CLIP-ViT-B-32", "VideoMAE-Base-K400"
SETTINGS = {"features.n_frames": 8, "model.hidden_size": 64, "model.embedding_size": 32,
            "model.attention_size": 32, "model.dropout": 0.0, "eval.beam_size": 3, "eval.max_len": 20,
            "eval.metrics": ["Bleu", "CIDEr"], "train.device": "cpu"}


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """{family: folder} of the tiny models: CLIP (vision and text towers) and VideoMAE."""
    root = tmp_path_factory.mktemp("weights")
    return {"CLIP": tiny.save_tiny_clip(str(root / "clip")),
            "VideoMAE": tiny.save_tiny_videomae(str(root / "videomae"))}


def folder_for(name: str, weights: dict) -> str:
    return weights[name.split("-")[0]]


def expected_size(name: str) -> int:
    if name.startswith("VideoMAE"):
        return tiny.VIDEOMAE_D
    return tiny.CLIP_POOLED if name.endswith("-pooled") else tiny.CLIP_PROJECTED


def read_all(path):
    with h5py.File(path, "r") as f:
        return {key: f[key][()] for key in f}, dict(f.attrs)


def extract(paths, output, backbone, **options):
    messages = []
    summary = extract_videos([str(p) for p in paths], str(output), backbone, every_n=EVERY_N,
                             progress=False, report=messages.append, **options)
    return summary, messages


def test_the_project_imports_without_transformers():
    code = ("import sys, train, run, extraction, extraction.backbones, captioning.video, splits.MSVD; "
            "assert 'transformers' not in sys.modules, 'transformers was imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_registry_lists_clip_and_the_video_model(capsys):
    assert {"CLIP-ViT-B-32", "CLIP-ViT-B-16", "CLIP-ViT-L-14", "VideoMAE-Base-K400"} <= set(BACKBONES)
    assert BACKBONES["CLIP-ViT-B-32"].default_weights == "openai/clip-vit-base-patch32"
    assert BACKBONES["CLIP-ViT-L-14"].feature_size == 768
    assert BACKBONES["CLIP-ViT-L-14-pooled"].feature_size == 1024
    assert BACKBONES[MOTION].clip_stride == 4
    assert extraction_main(["--list_backbones"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in TRANSFORMERS_BACKBONES)


@pytest.mark.parametrize("name", TRANSFORMERS_BACKBONES)
def test_features_of_real_clips(name, weights, tmp_path):
    backbone = build_backbone(name, folder_for(name, weights), device="cpu")
    assert backbone.name == name and backbone.feature_size == expected_size(name)
    summary, _ = extract(CLIPS, tmp_path / "a.hdf5", backbone)
    again = build_backbone(name.lower(), folder_for(name, weights), device="cpu")   # a new model
    extract(CLIPS, tmp_path / "b.hdf5", again)
    (a, attrs), (b, _) = read_all(tmp_path / "a.hdf5"), read_all(tmp_path / "b.hdf5")
    assert sorted(summary.written) == sorted(a) == sorted(FRAMES) and not summary.failed
    for vid, features in a.items():     # frames 0, 10, 20, ...: the same count for every backbone
        assert features.shape == (-(-FRAMES[vid] // EVERY_N), expected_size(name))
        assert features.dtype == np.float32 and np.isfinite(features).all() and features.std() > 0
        np.testing.assert_array_equal(features, b[vid])
    assert len({a[vid].tobytes() for vid in a}) == 3
    one = features_for_video(str(CLIPS[0]), backbone, every_n=EVERY_N)
    np.testing.assert_array_equal(one, a[CLIPS[0].stem])
    recorded = json.loads(attrs["preprocessing"])
    assert attrs["weights"] == folder_for(name, weights) and attrs["sampling"] == f"every_n={EVERY_N}"
    assert (recorded["resize"], recorded["crop"]) == (tiny.SIZE, tiny.SIZE)
    if name.startswith("CLIP"):
        assert recorded["interpolation"] == "BICUBIC" and recorded["clip_length"] == 1
        mean = [m * 255 for m in tiny.CLIP_PREPROCESSOR["image_mean"]]
        assert recorded["mean"] == pytest.approx(mean, abs=1e-4)
        assert recorded["output"] == ("pooler_output" if name.endswith("-pooled") else "image_embeds")
    else:
        assert recorded["interpolation"] == "BILINEAR"
        assert (recorded["clip_length"], recorded["clip_stride"]) == (tiny.VIDEOMAE_FRAMES, 4)
        std = [s * 255 for s in tiny.VIDEOMAE_PREPROCESSOR["image_std"]]
        assert recorded["std"] == pytest.approx(std, abs=1e-4)


def test_preprocessing_is_the_models_own(weights):
    """Our tensors equal what transformers' own image processors make of the same decoded frames."""
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("PIL", reason="transformers' reference image processors need Pillow")
    clip = build_backbone(APPEARANCE, weights["CLIP"], device="cpu")
    sampled = clip.read(str(CLIPS[0]), every_n=40)
    processor = transformers.CLIPImageProcessor.from_pretrained(weights["CLIP"])
    theirs = processor(images=list(sampled.frames), return_tensors="pt")["pixel_values"]
    ours = clip.preprocess(torch.from_numpy(sampled.frames))
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)
    with torch.no_grad():
        whole = transformers.CLIPModel.from_pretrained(weights["CLIP"])     # text tower too
        reference = whole.get_image_features(pixel_values=theirs)
    reference = reference if torch.is_tensor(reference) else reference.pooler_output
    np.testing.assert_allclose(clip.features(sampled), reference.numpy(), atol=1e-4)

    video = build_backbone(MOTION, weights["VideoMAE"], device="cpu")
    sampled = video.read(str(CLIPS[0]), every_n=40)
    processor = transformers.VideoMAEImageProcessor.from_pretrained(weights["VideoMAE"])
    frames = sampled.context[sampled.windows[1]]
    theirs = processor(list(frames), return_tensors="pt")["pixel_values"]     # (1, T, 3, S, S)
    torch.testing.assert_close(video.preprocess(torch.from_numpy(frames))[None], theirs, atol=1e-4, rtol=0)


def lossless_video(path, n=30):
    """n frames of 64x48 (FFV1, lossless), frame i filled with grey level 8 i, so a frame tells its index."""
    synthetic_video(path, n, codec="ffv1", pix_fmt="yuv444p")


def test_clips_are_the_frames_around_each_sampled_frame(tmp_path):
    assert clip_window(0, 30, 4, 4) == [0, 0, 0, 4]
    assert clip_window(15, 30, 4, 4) == [7, 11, 15, 19]
    assert clip_window(29, 30, 4, 4) == [21, 25, 29, 29]
    path = tmp_path / "synthetic.mkv"
    lossless_video(path)
    for every_n, n_frames in ((10, None), (None, 3)):
        sampled = read_frames(str(path), every_n, n_frames, short_side=48, clip_length=4, clip_stride=4)
        assert sampled.indices == ([0, 10, 20] if every_n else [5, 15, 25])
        levels = sampled.context.mean(axis=(1, 2, 3))[sampled.windows]
        wanted = np.array([[8 * i for i in clip_window(p, 30, 4, 4)] for p in sampled.indices])
        np.testing.assert_allclose(levels, wanted, atol=3)
        centres = sampled.frames.mean(axis=(1, 2, 3))
        np.testing.assert_allclose(centres, [8 * p for p in sampled.indices], atol=3)


def test_speed_benchmark_reports_each_architecture(weights, monkeypatch, capsys):
    from extraction import speed, transformers_models

    def tiny_network(name):             # the real sizes take minutes on a CPU
        if name.startswith("CLIP"):
            return transformers_models.build_clip(weights["CLIP"], name, True), tiny.CLIP_PREPROCESSOR
        return transformers_models.build_videomae(weights["VideoMAE"], name), tiny.VIDEOMAE_PREPROCESSOR

    monkeypatch.setattr(speed, "real_size_network", tiny_network)
    assert speed.main(["--device", "cpu", "--names", f"{APPEARANCE},{MOTION}", "--frames", "2",
                       "--batches", "1"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["backbone"], r["D"]) for r in rows] == [(APPEARANCE, tiny.CLIP_PROJECTED),
                                                       (MOTION, tiny.VIDEOMAE_D)]
    assert all(r["frames_per_second"] > 0 for r in rows)


def test_a_relative_folder_is_recorded_as_an_absolute_one(weights, monkeypatch):
    folder = Path(weights["CLIP"])
    monkeypatch.chdir(folder.parent)
    assert build_backbone(APPEARANCE, folder.name, device="cpu").record()["weights"] == str(folder)


def test_weights_that_are_not_here_are_explained(weights, tmp_path, monkeypatch):
    with pytest.raises(DataError, match="hf download openai/clip-vit-base-patch32 "
                                        "--local-dir clip-vit-base-patch32"):
        build_backbone(APPEARANCE, device="cpu")          # the published id, no network, no cache
    with pytest.raises(DataError, match="neither a folder nor a Hugging Face model id"):
        build_backbone(APPEARANCE, str(tmp_path / "no" / "such" / "folder"), device="cpu")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="must hold what `save_pretrained`"):
        build_backbone(MOTION, str(empty), device="cpu")
    with pytest.raises(DataError, match="'videomae' model"):
        build_backbone(APPEARANCE, weights["VideoMAE"], device="cpu")
    monkeypatch.setitem(sys.modules, "transformers", None)          # import transformers fails
    with pytest.raises(DataError, match="pip install"):
        build_backbone(APPEARANCE, weights["CLIP"], device="cpu")


def test_resume_and_other_preprocessing_in_one_file(weights, tmp_path):
    output = tmp_path / "motion.hdf5"
    video = build_backbone(MOTION, weights["VideoMAE"], device="cpu")
    extract(CLIPS[:1], output, video)
    summary, messages = extract(CLIPS, output, video)
    assert summary.skipped == [CLIPS[0].stem] and len(summary.written) == 2
    assert any("already extracted" in m for m in messages)
    other = tmp_path / "other"
    shutil.copytree(weights["VideoMAE"], other)
    config = json.loads((other / "preprocessor_config.json").read_text())
    (other / "preprocessor_config.json").write_text(json.dumps({**config, "image_mean": [0.5, 0.5, 0.5]}))
    with pytest.raises(DataError, match="one file holds one preprocessing"):
        extract(CLIPS, output, build_backbone(MOTION, str(other), device="cpu"))


class NaNFor:
    """A backbone whose features of the videos named turn to NaN."""

    def __init__(self, backbone, bad_video):
        self.inner, self.bad_video = backbone, bad_video

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def read(self, path, every_n=5, n_frames=None):
        sampled = self.inner.read(path, every_n, n_frames)
        sampled.bad = self.bad_video in path
        return sampled

    def features(self, sampled, batch_size=64, done=None):
        features = self.inner.features(sampled, batch_size, done)
        if sampled.bad:
            features[1, 0] = np.nan
        return features


def test_non_finite_features_are_refused(weights, tmp_path):
    backbone = NaNFor(build_backbone(APPEARANCE, weights["CLIP"], device="cpu"), CLIPS[1].stem)
    summary, messages = extract(CLIPS, tmp_path / "out.hdf5", backbone)
    assert sorted(summary.written) == sorted([CLIPS[0].stem, CLIPS[2].stem])
    assert list(summary.failed) == [str(CLIPS[1])]
    assert any(f"video {CLIPS[1].stem} hold NaN or inf" in m for m in messages)
    assert CLIPS[1].stem not in read_all(tmp_path / "out.hdf5")[0]


# --------------------------------------------------------------- appearance + motion, end to end

@pytest.fixture(scope="module")
def corpus(weights, tmp_path_factory):
    """Appearance + motion features of the three clips, prepared by splits.MSVD's reader (every split
    holds the three clips), a model trained on them, and its checkpoint from train.py's payload."""
    root = tmp_path_factory.mktemp("data")
    paths = corpus_paths(str(root), "MSVD")
    os.makedirs(paths.annotations)
    shutil.copy(REPO / "data" / "MSVD" / "annotations" / "youtube_mapping.txt", paths.annotations)
    for name in (APPEARANCE, MOTION):
        extraction_status = extraction_main(
            ["--videos", str(VIDEOS), "--backbone", name, "--weights", folder_for(name, weights),
             "--every_n", str(EVERY_N), "--corpus.name", "MSVD", "--corpus.data_root", str(root),
             "--device", "cpu", "--no_progress"])
        assert extraction_status == 0
    config = config_module.build("MSVD", **{**SETTINGS, "corpus.data_root": str(root),
                                            "features.backbones": [APPEARANCE, MOTION]})
    corpus = msvd.read_corpus(config)
    references = msvd_references()
    for split, per_clip in (("train", 5), ("val", None), ("test", None)):
        videos = [{"id": vid, "captions": references[vid][:per_clip]} for vid in sorted(references)]
        record = write_prepared(paths, "MSVD", split, videos, [APPEARANCE, MOTION],
                                feature_key=corpus.feature_key, fix=corpus.feature_fix)
        assert {v["id"]: v["n_frames"] for v in record["videos"]} == {
            CLIP_TO_VID[clip]: -(-count // EVERY_N) for clip, count in FRAMES.items()}
    model, data = train_until_it_recites(config, references)
    assert data.feature_size == tiny.CLIP_PROJECTED + tiny.VIDEOMAE_D
    checkpoint = root / "best.pt"
    checkpoints.save(str(checkpoint), {**train_module.model_payload(model, config, data), "epoch": 0})
    test = load_split(config, "test")
    captions = {p["video_id"]: p["caption"] for p in caption_videos(model, test, data.vocab, config.eval, 8)}
    return SimpleNamespace(root=root, config=config, model=model, vocab=data.vocab, test=test,
                           checkpoint=checkpoint, references=references, captions=captions)


def run_py(capsys, *args):
    capsys.readouterr()
    status = run_module.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def test_the_checkpoint_records_each_backbones_weights_and_preprocessing(corpus, weights):
    recorded = checkpoints.load(str(corpus.checkpoint))["feature_extraction"]
    assert sorted(recorded) == sorted([APPEARANCE, MOTION])
    assert recorded[MOTION]["weights"] == weights["VideoMAE"]
    assert json.loads(recorded[MOTION]["preprocessing"])["clip_length"] == tiny.VIDEOMAE_FRAMES


def test_each_clip_gets_its_own_caption_and_swapping_features_swaps_them(corpus):
    for vid, caption in corpus.captions.items():
        assert caption in corpus.references[vid], (vid, caption)
    test = corpus.test
    order = [1, 0, 2]
    swapped = test.subset(order)
    swapped.video_ids = list(test.video_ids)      # same names, the other clip's frames
    captions = {p["video_id"]: p["caption"]
                for p in caption_videos(corpus.model, swapped, corpus.vocab, corpus.config.eval, 8)}
    assert captions[test.video_ids[0]] == corpus.captions[test.video_ids[1]]
    assert captions[test.video_ids[1]] == corpus.captions[test.video_ids[0]]


def test_run_py_captions_the_clip_files_with_both_streams(corpus, capsys):
    # No --weights, no --every_n: the checkpoint recorded the folders and the sampling.
    status, out, err = run_py(capsys, "--checkpoint", corpus.checkpoint, "--video", VIDEOS)
    assert status == 0, err[-2000:]
    printed = dict(line.split("\t") for line in out.splitlines())
    assert printed == {clip: corpus.captions[vid] for clip, vid in CLIP_TO_VID.items()}


def test_run_py_refuses_other_preprocessing_and_non_finite_features(corpus, weights, tmp_path, capsys,
                                                                    monkeypatch):
    other = tmp_path / "other"
    shutil.copytree(weights["VideoMAE"], other)
    config = json.loads((other / "preprocessor_config.json").read_text())
    (other / "preprocessor_config.json").write_text(json.dumps({**config, "resample": 3}))
    status, out, err = run_py(capsys, "--checkpoint", corpus.checkpoint, "--video", CLIPS[0],
                              "--weights", f"{MOTION}={other}")
    assert status == 2 and out == "" and "preprocessing" in err and f"--weights {MOTION}=" in err

    import captioning.video as captioning_video
    load = captioning_video.load_backbones
    monkeypatch.setattr(captioning_video, "load_backbones", lambda *a, **k: [
        NaNFor(b, CLIPS[0].stem) if b.name == MOTION else NaNFor(b, "no such clip") for b in load(*a, **k)])
    status, out, err = run_py(capsys, "--checkpoint", corpus.checkpoint, "--video", CLIPS[0], CLIPS[1])
    assert status == 1 and out.startswith(CLIPS[1].stem)
    assert f"{MOTION} features of video {CLIPS[0]} hold NaN or inf" in err and "skipped" in err


def test_run_py_with_clip_alone(corpus, weights, tmp_path, capsys):
    config = config_module.build("MSVD", **{**SETTINGS, "corpus.data_root": str(corpus.root),
                                            "features.backbones": [APPEARANCE]})
    data = load_training_data(config, torch.device("cpu"))
    torch.manual_seed(0)
    model = train_module.build_model(config, len(data.vocab), data.feature_size).eval()
    checkpoint = tmp_path / "clip_only.pt"
    checkpoints.save(str(checkpoint), {**train_module.model_payload(model, config, data), "epoch": 0})
    wanted = {p["video_id"]: p["caption"]
              for p in caption_videos(model, data.val, data.vocab, config.eval, 8)}
    status, out, err = run_py(capsys, "--checkpoint", checkpoint, "--video", VIDEOS,
                              "--weights", weights["CLIP"])
    assert status == 0, err[-2000:]
    printed = dict(line.split("\t") for line in out.splitlines())
    assert printed == {clip: wanted[vid] for clip, vid in CLIP_TO_VID.items()}


def test_train_py_on_appearance_and_motion_then_run_py_on_a_clip(corpus, weights, tmp_path, capsys):
    config = config_module.build("MSVD", **{**SETTINGS, "corpus.data_root": str(corpus.root),
                                            "features.backbones": [APPEARANCE, MOTION],
                                            "train.run_root": str(tmp_path), "train.epochs": 2,
                                            "train.select_metric": "loss", "eval.metrics": []})
    train_module.train(config, new_run=True)
    best = next(tmp_path.glob("*/best.pt"))
    recorded = checkpoints.load(str(best))["feature_extraction"]
    assert {name: entry["weights"] for name, entry in recorded.items()} == {
        APPEARANCE: weights["CLIP"], MOTION: weights["VideoMAE"]}
    status, out, err = run_py(capsys, "--checkpoint", best, "--video", CLIPS[2])
    assert status == 0, err[-2000:]
    assert out.startswith(f"{CLIPS[2].stem}\t") and len(out.splitlines()) == 1
