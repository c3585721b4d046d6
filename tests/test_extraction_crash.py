"""Extraction stopped at any point (a disk that fills up, SIGKILL mid-video or mid-write), then run
again: the feature file ends up identical to that of an uninterrupted extraction."""
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("av", reason="needs PyAV (pip install av) to read video files")

from extraction.store import CHECKSUM, FeatureStore

REPO = Path(__file__).resolve().parents[1]
CLIPS = sorted(str(p) for p in (Path(__file__).parent / "fixtures" / "videos").glob("*.avi"))

# Runs the extraction command in a child that dies as asked: FSIZE=n caps the files it may write
# at n bytes (the disk is full from there on), KILL_AT=what:n sends itself SIGKILL at the n-th call
# of the backbone's per-batch progress ("batch", mid-video), of os.replace ("replace": the renames
# of each finished video's file and of the new feature file) or of h5py's create_dataset
# ("dataset", while the new feature file is written).
CHILD = r"""
import os, resource, signal, sys
import h5py
if os.environ.get("FSIZE"):
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limit = int(os.environ["FSIZE"])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
if os.environ.get("KILL_AT"):
    what, n = os.environ["KILL_AT"].split(":")
    calls = [0]
    def killer(original):
        def wrapped(*args, **kwargs):
            calls[0] += 1
            if calls[0] == int(n):
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kwargs)
        return wrapped
    if what == "batch":
        import extraction.backbones as b
        original = b.Backbone.features
        b.Backbone.features = lambda self, frames, size=64, done=None: original(
            self, frames, 1, killer(done or (lambda f: None)))
    elif what == "replace":
        os.replace = killer(os.replace)
    else:
        h5py.Group.create_dataset = killer(h5py.Group.create_dataset)
from extraction.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def extract(output, **env):
    command = [sys.executable, "-c", CHILD, "--videos", *CLIPS, "--output", str(output),
               "--n_frames", "3", "--device", "cpu", "--no_progress", "--workers", "1"]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **{k: str(v) for k, v in env.items()}})


def read_all(path):
    with h5py.File(path, "r") as f:
        return {key: f[key][()] for key in f}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    output = tmp_path_factory.mktemp("whole") / "features.hdf5"
    done = extract(output)
    assert done.returncode == 0, done.stderr
    return output


def assert_same(output, reference):
    features, expected = read_all(output), read_all(reference)
    assert sorted(features) == sorted(expected)
    for vid in expected:
        np.testing.assert_array_equal(features[vid], expected[vid])


@pytest.mark.parametrize("fraction", [0.3, 0.97])
def test_full_disk_then_rerun_gives_the_uninterrupted_features(tmp_path, uninterrupted, fraction):
    output = tmp_path / "features.hdf5"
    full = extract(output, FSIZE=int(os.path.getsize(uninterrupted) * fraction))
    assert full.returncode == 2, full.stderr
    lines = [line for line in full.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1 and str(output) in lines[0] and "no space left" in lines[0].lower()
    assert "Traceback" not in full.stderr
    again = extract(output)
    assert again.returncode == 0, again.stderr
    assert_same(output, uninterrupted)


@pytest.mark.parametrize("kill_at", ["batch:2", "replace:3", "dataset:2", "replace:5"])
def test_sigkill_then_rerun_gives_the_uninterrupted_features(tmp_path, uninterrupted, kill_at):
    output = tmp_path / "features.hdf5"
    killed = extract(output, KILL_AT=kill_at)
    assert killed.returncode == -9, killed.stderr
    again = extract(output)
    assert again.returncode == 0, again.stderr
    assert_same(output, uninterrupted)


def test_an_entry_whose_values_never_reached_the_disk_is_extracted_again(tmp_path, uninterrupted):
    """What a crash can leave: the entry is named, but some of its frames are zeros."""
    output = tmp_path / "features.hdf5"
    output.write_bytes(uninterrupted.read_bytes())
    damaged = sorted(read_all(output))[1]
    with h5py.File(output, "a") as f:
        f[damaged][1] = 0.0                     # the values, not their CRC
        assert CHECKSUM in f[damaged].attrs
    messages = []
    with FeatureStore(str(output), "EfficientNetLite0", 1280, "n_frames=3", messages.append) as store:
        assert not store.is_done(damaged)
    assert any(damaged in m and "CRC" in m for m in messages)
    again = extract(output)
    assert again.returncode == 0 and "1 videos written" in again.stdout, again.stdout
    assert_same(output, uninterrupted)


def test_an_entry_without_crc_and_with_a_frame_of_zeros_is_extracted_again(tmp_path, uninterrupted):
    output = tmp_path / "features.hdf5"
    output.write_bytes(uninterrupted.read_bytes())
    damaged = sorted(read_all(output))[0]
    with h5py.File(output, "a") as f:
        for vid in f:
            del f[vid].attrs[CHECKSUM]          # as files written by other tools
        f[damaged][0] = 0.0
    again = extract(output)
    assert again.returncode == 0 and "1 videos written" in again.stdout, again.stdout
    assert "1 frames of zeros" in again.stderr
    assert_same(output, uninterrupted)
