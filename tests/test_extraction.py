"""Feature extraction from real MSVD clips (tests/fixtures/videos) with EfficientNet-Lite0 on the CPU.

Few frames per clip (n_frames 2-4, every_n 40) keep the whole file to seconds. Where there is
a GPU (with PyAV and the backbone's package installed there), one test extracts
there too and compares with the CPU.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

av = pytest.importorskip("av", reason="needs PyAV (pip install av) to read video files")

import config as config_module
from extraction import BACKBONES, build_backbone, extract_videos, features_for_video, read_frames
from extraction import video as video_module
from extraction.__main__ import main as cli_main
from extraction.backbones import canonical_name
from extraction.store import STAGING
from extraction.video import equally_spaced
from splits.layout import corpus_paths, write_prepared
from tests.devices import TRAIN_DEVICE
from tests.videos import synthetic_video
from utils import DataError, pick_device

REPO = Path(__file__).resolve().parents[1]
CLIPS = sorted((Path(__file__).parent / "fixtures" / "videos").glob("*.avi"))
FRAMES = {"WTf5EgVY5uU_124_128": 120, "j2Dhf-xFUxU_13_20": 106, "qvg9eM4Hmzk_4_10": 91}
D = 1280


@pytest.fixture(scope="module")
def backbone():
    return build_backbone("EfficientNetLite0", device="cpu")


class CountingBackbone:
    """Wraps a backbone, counts the videos it runs on, optionally stops at one like Ctrl-C."""

    def __init__(self, backbone, interrupt_at=None):
        self.inner, self.calls, self.interrupt_at = backbone, 0, interrupt_at

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def features(self, frames, batch_size=64, done=None):
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        return self.inner.features(frames, batch_size, done)


def run(paths, output, backbone, **options):
    messages = []
    options.setdefault("n_frames", 2)
    summary = extract_videos([str(p) for p in paths], str(output), backbone, progress=False,
                             report=messages.append, **options)
    return summary, messages


def read_all(path):
    with h5py.File(path, "r") as f:
        return {key: f[key][()] for key in f}


def test_fixture_clips_are_there():
    assert [c.stem for c in CLIPS] == sorted(FRAMES)


def test_sampling_rules():
    assert equally_spaced(100, 4) == [12, 37, 62, 87]
    assert equally_spaced(3, 5) == [0, 1, 2]           # a short clip keeps every frame, no repeats
    for total in range(1, 200, 7):
        for k in (1, 4, 28):
            picked = equally_spaced(total, k)
            assert len(picked) == min(total, k) and picked == sorted(set(picked))
            assert 0 <= picked[0] and picked[-1] < total


def test_read_frames_samples_real_clip():
    clip = str(CLIPS[-1])                                # qvg9eM4Hmzk_4_10: 91 frames of 352x288
    sampled = read_frames(clip, every_n=40, short_side=256)
    assert sampled.indices == [0, 40, 80] and sampled.total_frames == 91
    assert sampled.frames.dtype == np.uint8 and sampled.frames.shape == (3, 256, 313, 3)
    assert read_frames(clip, n_frames=4).indices == equally_spaced(91, 4)


@pytest.mark.parametrize("suffix", [".mkv", ".avi"])       # .mkv headers carry no frame count
def test_equally_spaced_frames_are_the_right_ones(tmp_path, suffix):
    path = tmp_path / f"synthetic{suffix}"
    synthetic_video(path)
    sampled = read_frames(str(path), n_frames=4, short_side=48)
    assert sampled.indices == [3, 11, 18, 26] and sampled.total_frames == 30
    assert np.allclose(sampled.frames.mean(axis=(1, 2, 3)), [24, 88, 144, 208], atol=3)


def test_wrong_frame_count_in_header_is_corrected(tmp_path, monkeypatch):
    path = tmp_path / "synthetic.avi"
    synthetic_video(path)
    monkeypatch.setattr(video_module, "_count_frames", lambda p: 40)   # the header lies
    assert read_frames(str(path), n_frames=4).indices == equally_spaced(30, 4)


def test_registry_and_names(backbone):
    assert BACKBONES["EfficientNetLite0"].feature_size == D
    assert {"ResNet101", "ResNet152"} <= set(BACKBONES)
    assert backbone.name == "EfficientNetLite0" and backbone.feature_size == D
    assert canonical_name("resnet152") == "ResNet152"
    with pytest.raises(DataError, match="needs --weights"):
        build_backbone("ResNet152", device="cpu")
    with pytest.raises(DataError, match="not built in"):
        build_backbone("NoSuchNet", device="cpu")


def test_shapes_and_same_numbers_twice(tmp_path, backbone):
    first, _ = run(CLIPS, tmp_path / "a.hdf5", backbone, n_frames=4)
    fresh = build_backbone("EfficientNetLite0", device="cpu")       # a new model: same numbers
    run(CLIPS, tmp_path / "b.hdf5", fresh, n_frames=4)
    a, b = read_all(tmp_path / "a.hdf5"), read_all(tmp_path / "b.hdf5")
    assert sorted(first.written) == sorted(a) == sorted(FRAMES) and not first.failed
    for vid, features in a.items():
        assert features.shape == (4, D) and features.dtype == np.float32
        assert np.isfinite(features).all() and features.std() > 0
        np.testing.assert_array_equal(features, b[vid])
    one = features_for_video(str(CLIPS[0]), backbone, n_frames=4)
    np.testing.assert_array_equal(one, a[CLIPS[0].stem])
    device = pick_device(TRAIN_DEVICE)
    if device.type != "cpu":      # frames decoded on the CPU, the backbone there, features back
        on_device = build_backbone("EfficientNetLite0", device=str(device))
        run(CLIPS, tmp_path / "device.hdf5", on_device, n_frames=4)
        device_features = read_all(tmp_path / "device.hdf5")
        assert sorted(device_features) == sorted(a)
        for vid, features in device_features.items():
            scale = np.abs(a[vid]).max()     # cuDNN may convolve in TF32: about 1e-3 apart
            np.testing.assert_allclose(features, a[vid], rtol=0, atol=1e-2 * scale, err_msg=vid)

    run(CLIPS[:1], tmp_path / "every.hdf5", backbone, every_n=40, n_frames=None)
    with h5py.File(tmp_path / "every.hdf5", "r") as f:
        entry = f[CLIPS[0].stem]
        assert entry.shape == (3, D)                                 # frames 0, 40, 80 of 120
        assert entry.attrs["total_frames"] == FRAMES[CLIPS[0].stem]
        assert f.attrs["backbone"] == "EfficientNetLite0" and f.attrs["sampling"] == "every_n=40"


def test_corrupt_videos_are_reported_and_skipped(tmp_path, backbone, capsys):
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"\x00garbage, not a video\xff" * 3)
    truncated = tmp_path / "truncated.avi"                         # a real clip cut short
    truncated.write_bytes(CLIPS[0].read_bytes()[:60000])
    paths = [CLIPS[0], bad, CLIPS[1], truncated, CLIPS[2]]
    summary = extract_videos([str(p) for p in paths], str(tmp_path / "out.hdf5"), backbone,
                             n_frames=2, progress=False)
    stderr = capsys.readouterr().err
    assert "bad.avi" in stderr and "truncated.avi" in stderr
    assert set(summary.failed) == {str(bad), str(truncated)}
    assert sorted(read_all(tmp_path / "out.hdf5")) == sorted(FRAMES)
    assert "bad.avi" in str(summary)


def test_resume_skips_done_videos(tmp_path, backbone):
    output = tmp_path / "out.hdf5"
    run(CLIPS[:1], output, backbone)
    before = read_all(output)
    counting = CountingBackbone(backbone)
    summary, messages = run(CLIPS, output, counting)
    assert summary.skipped == [CLIPS[0].stem] and sorted(summary.written) == sorted(FRAMES)[1:]
    assert counting.calls == 2 and any("already extracted" in m for m in messages)
    np.testing.assert_array_equal(read_all(output)[CLIPS[0].stem], before[CLIPS[0].stem])


def test_interrupted_run_leaves_no_half_entry(tmp_path, backbone):
    output = tmp_path / "out.hdf5"
    with pytest.raises(KeyboardInterrupt):
        run(CLIPS, output, CountingBackbone(backbone, interrupt_at=2))
    with h5py.File(output, "r") as f:                              # closed cleanly, one video in
        assert list(f) == [CLIPS[0].stem]
    summary, _ = run(CLIPS, output, backbone)
    assert summary.skipped == [CLIPS[0].stem] and len(summary.written) == 2
    assert sorted(read_all(output)) == sorted(FRAMES)


def test_half_written_and_invalid_entries_are_redone(tmp_path, backbone):
    output = tmp_path / "out.hdf5"
    run(CLIPS[:1], output, backbone)
    staged, invalid = CLIPS[1].stem, CLIPS[2].stem
    with h5py.File(output, "a") as f:                              # as a crash mid-write leaves it
        f.create_group(STAGING).create_dataset(staged, data=np.zeros((1, D), np.float32))
        f.create_dataset(invalid, data=np.zeros((0, D), np.float32))
    summary, messages = run(CLIPS, output, backbone)
    assert any("unfinished" in m for m in messages) and any(invalid in m for m in messages)
    assert summary.skipped == [CLIPS[0].stem] and sorted(summary.written) == sorted([staged, invalid])
    features = read_all(output)
    assert sorted(features) == sorted(FRAMES) and STAGING not in features
    np.testing.assert_array_equal(features[invalid], features_for_video(str(CLIPS[2]), backbone, n_frames=2))


def test_file_of_other_settings_or_origin_is_refused(tmp_path, backbone):
    output = tmp_path / "out.hdf5"
    run(CLIPS[:1], output, backbone, n_frames=2)
    with pytest.raises(DataError, match="sampling"):
        run(CLIPS, output, backbone, every_n=40, n_frames=None)
    foreign = tmp_path / "foreign.hdf5"
    with h5py.File(foreign, "w") as f:
        f["vid1"] = np.ones((3, 7), np.float32)
    with pytest.raises(DataError, match="not written by this extractor"):
        run(CLIPS, foreign, backbone)
    assert list(read_all(foreign)) == ["vid1"]


def test_cli_default_output_and_exit_status(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(CLIPS[0], videos)
    (videos / "bad.avi").write_bytes(b"not a video")
    data_root = tmp_path / "data"
    result = subprocess.run(
        [sys.executable, "-m", "extraction", "--videos", str(videos), "--n_frames", "2",
         "--corpus.name", "MSVD", "--corpus.data_root", str(data_root), "--device", "cpu",
         "--no_progress"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr                   # one video failed, one written
    assert "bad.avi" in result.stderr
    written = corpus_paths(str(data_root), "MSVD").feature_file("MSVD", "EfficientNetLite0")
    assert {k: v.shape for k, v in read_all(written).items()} == {CLIPS[0].stem: (2, D)}
    assert cli_main(["--videos", str(CLIPS[0])]) == 2               # no --output and no corpus


def test_extracted_file_is_accepted_by_the_data_layout(tmp_path, backbone):
    paths = corpus_paths(str(tmp_path), "MSVD")
    run(CLIPS, paths.feature_file("MSVD", "EfficientNetLite0"), backbone, n_frames=3)
    videos = [{"id": clip.stem, "captions": ["a caption"]} for clip in CLIPS]
    record = write_prepared(paths, "MSVD", "subset", videos, ["EfficientNetLite0"])
    assert record["backbones"]["EfficientNetLite0"]["dim"] == D
    assert [v["n_frames"] for v in record["videos"]] == [3, 3, 3]
    with h5py.File(paths.split_features("subset", "EfficientNetLite0"), "r") as links:
        assert links[CLIPS[0].stem].shape == (3, D)


def test_msvd_prepare_finds_features_by_clip_id(tmp_path, backbone):
    msvd = pytest.importorskip("splits.MSVD")
    config = config_module.build("MSVD", **{"corpus.data_root": str(tmp_path),
                                            "features.backbones": ["EfficientNetLite0"]})
    paths = corpus_paths(str(tmp_path), "MSVD")
    run(CLIPS, paths.feature_file("MSVD", "EfficientNetLite0"), backbone, n_frames=3)
    corpus = msvd.read_corpus(config)
    # Our clips are vid1025 (train), vid1429 and vid1712 (test) in youtube_mapping.txt.
    for split, wanted in {"train": {"vid1025"}, "test": {"vid1429", "vid1712"}}.items():
        subset = [v for v in corpus.videos[split] if v["id"] in wanted]
        record = write_prepared(paths, "MSVD", f"{split}_subset", subset, ["EfficientNetLite0"],
                                feature_key=corpus.feature_key, fix=corpus.feature_fix)
        assert {v["id"]: v["n_frames"] for v in record["videos"]} == {vid: 3 for vid in wanted}
    # the full split needs every clip
    with pytest.raises(DataError, match="1199 of the 1200 videos of the train split are missing "
                                        "from .*: vid1, vid2,"):
        msvd.prepare(config)


def test_missing_torchvision_is_explained(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)          # import torchvision fails
    with pytest.raises(DataError, match="pip install torchvision"):
        build_backbone("ResNet152", weights="resnet152.pth", device="cpu")


def test_torchvision_backbone_from_local_weights(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    import torch
    weights = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    backbone = build_backbone("resnet18", weights=str(weights), device="cpu")
    assert backbone.feature_size == 512
    assert features_for_video(str(CLIPS[0]), backbone, n_frames=2).shape == (2, 512)


def test_bad_weights_and_device_are_explained(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="not a readable"):
        build_backbone("EfficientNetLite0", weights=str(garbage), device="cpu")
    import torch
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, other)
    with pytest.raises(DataError, match="does not fit"):
        build_backbone("EfficientNetLite0", weights=str(other), device="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(DataError, match="--device"):
            build_backbone("EfficientNetLite0", device="cuda")
