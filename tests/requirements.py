"""What some tests need beyond torch, h5py and numpy, checked without failing.

A machine without Java, pycocoevalcap, tensorboardX, PyAV or matplotlib (the lent GPU machine has
none of them) runs every other test: the tests that need them skip and say what is missing
(pytest.importorskip), and training tests go on without COCO scores (scorer_missing).
"""
import importlib
import shutil


def importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def scorer_missing() -> str:
    """Why the COCO metrics cannot run here, or '' when they can."""
    missing = [what for what, absent in (("Java (`java` on PATH)", shutil.which("java") is None),
                                         ("pycocoevalcap", not importable("pycocoevalcap")))
               if absent]
    return " and ".join(missing)
