"""training/background_saves.py: checkpoints written while the next epoch trains."""
import threading

import pytest
import torch

from models import checkpoints
from training.background_saves import BackgroundSaves, cpu_snapshot
from utils import WriteError


def test_a_save_holds_the_values_of_its_call_not_of_later_changes(tmp_path):
    weights = torch.arange(6.0)
    progress = {"epoch": 1, "history": [{"loss": 2.0}]}
    saves = BackgroundSaves()
    saves.save(str(tmp_path / "last.pt"), {"model": {"w": weights}, "progress": progress})
    weights.add_(100)                       # the next epoch trains in place
    progress["epoch"] = 2
    progress["history"].append({"loss": 1.0})
    saves.wait()
    saved = checkpoints.load(str(tmp_path / "last.pt"))
    assert torch.equal(saved["model"]["w"], torch.arange(6.0))
    assert saved["progress"] == {"epoch": 1, "history": [{"loss": 2.0}]}


def test_snapshots_are_cpu_copies():
    tensor = torch.ones(3)
    snapshot = cpu_snapshot({"a": [tensor, (tensor, 1)], "b": "x"})
    assert snapshot["a"][0].data_ptr() != tensor.data_ptr() and isinstance(snapshot["a"][1], tuple)
    assert snapshot["a"][1][0].device.type == "cpu" and snapshot["b"] == "x"


def third_save_while_two_wait(release, paths, while_blocked=lambda: None) -> bool:
    """Two saves whose writes wait for release, then a third from another thread: whether the
    third was still blocked after 0.5 s (while_blocked runs then); all written on return."""
    saves = BackgroundSaves()
    saves.save(paths[0], {})
    saves.save(paths[1], {})
    third = threading.Thread(target=saves.save, args=(paths[2], {}))
    third.start()
    third.join(0.5)
    blocked = third.is_alive()
    while_blocked()
    release.set()
    third.join(10)
    saves.wait()
    return blocked


def test_saves_are_written_in_order_with_at_most_two_in_flight(monkeypatch):
    release, written = threading.Event(), []

    def slow_save(path, payload):
        assert release.wait(10)
        written.append(path)
    monkeypatch.setattr(checkpoints, "save", slow_save)
    written_while_blocked = []
    blocked = third_save_while_two_wait(release, ["best.pt", "last.pt", "next.pt"],
                                        lambda: written_while_blocked.append(list(written)))
    assert blocked and written_while_blocked == [[]]     # the third waits for the first
    assert written == ["best.pt", "last.pt", "next.pt"]


def test_a_failed_write_is_raised_by_wait_naming_the_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    saves = BackgroundSaves()
    saves.save(str(blocker / "last.pt"), {"model": {}})
    with pytest.raises(WriteError, match=r"cannot write .*last\.pt: File exists \(EEXIST\); nothing was"):
        saves.wait()
    saves.wait()                            # reported once; nothing left in flight


def test_an_error_on_its_way_up_keeps_its_place_and_a_failed_write_is_printed(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    saves = BackgroundSaves()
    saves.save(str(blocker / "last.pt"), {"model": {}})
    saves.wait(report_only=True)
    assert "error: cannot write" in capsys.readouterr().err


def test_a_save_waits_for_room_before_it_copies(monkeypatch):
    """At most two snapshots in host memory: the third copy is made only once the first is
    written."""
    release, copies = threading.Event(), []
    monkeypatch.setattr(checkpoints, "save", lambda path, payload: release.wait(10))
    import training.background_saves as module
    monkeypatch.setattr(module, "cpu_snapshot", lambda payload: copies.append(payload) or payload)
    copies_while_blocked = []
    third_save_while_two_wait(release, ["a", "b", "c"],
                              lambda: copies_while_blocked.append(len(copies)))
    assert copies_while_blocked == [2]
    assert len(copies) == 3
