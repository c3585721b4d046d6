"""bench/resume_check.py, the GPU check's resume after SIGKILL, with a stand-in for train.py: it
passes only when the kill landed mid-run and the second start resumed."""
import os
import textwrap

import pytest

from bench import resume_check

# The stand-in: a second start (last.pt there) says it resumes and ends; a first one writes
# last.pt, then trains on (sleeps) unless told it has already ended.
FAKE_TRAIN = textwrap.dedent("""
    import os, sys, time
    run_dir, mode = sys.argv[1], sys.argv[2]
    last = os.path.join(run_dir, "last.pt")
    if os.path.exists(last):
        print("resuming run after epoch 1")
        sys.exit(0)
    open(last, "w").close()
    if mode == "still_training":
        time.sleep(60)
""")


@pytest.fixture
def fake_repo(tmp_path, monkeypatch):
    (tmp_path / "train.py").write_text(FAKE_TRAIN)
    monkeypatch.setattr(resume_check, "REPO", str(tmp_path))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    return str(run_dir)


def test_a_kill_mid_run_then_a_resume_passes(fake_repo, capsys):
    assert resume_check.main([fake_repo, "--", fake_repo, "still_training"]) == 0
    said = capsys.readouterr().out
    assert "killed with SIGKILL" in said and "OK: resuming run after epoch 1" in said


def test_a_run_that_ended_before_the_kill_fails(fake_repo, monkeypatch, capsys):
    """As on a fast GPU with a small corpus: the run was over when last.pt was seen."""
    def seen_after_the_end(path, process, timeout_s):
        process.wait()
        return ""
    monkeypatch.setattr(resume_check, "wait_for", seen_after_the_end)
    assert resume_check.main([fake_repo, "--", fake_repo, "ended"]) == 1
    said = capsys.readouterr().out
    assert "FAILED: train.py ended (status 0) before the kill" in said
    assert os.path.exists(os.path.join(fake_repo, "last.pt"))
