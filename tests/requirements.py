"""What some tests need beyond torch, h5py and numpy, as skip marks with the reason.

A machine without Java, pycocoevalcap, tensorboardX or PyAV (the lent GPU machine has none of
them) runs every other test; the skipped ones say what is missing.
"""
import importlib
import shutil

import pytest


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


needs_pyav = pytest.mark.skipif(not importable("av"), reason="needs PyAV (pip install av) to read video files")
needs_scorer = pytest.mark.skipif(bool(scorer_missing()),
                                  reason=f"COCO scoring needs {scorer_missing() or 'nothing missing'}")
