"""The scorer a command uses: eval.metrics' COCO metrics, or none (a machine without Java trains)."""
from __future__ import annotations

import importlib.util
import shutil
import sys

from evaluation.coco import CaptionScorer, MetricError
from utils import DataError

NO_SCORING = '--eval.metrics ""'


class NoScorer:
    """CaptionScorer's stand-in when eval.metrics is empty: no score, not even a zero."""

    def score(self, references: dict, hypotheses: dict) -> dict:
        return {}

    def close(self) -> None:
        pass

    __enter__, __exit__ = CaptionScorer.__enter__, CaptionScorer.__exit__


def open_scorer(eval_config, without_scores: str):
    """CaptionScorer(eval.metrics), or NoScorer with a note saying what the command does without scores."""
    metrics = list(eval_config.metrics)
    if not metrics:
        print(f"note: eval.metrics is empty: no COCO scores are computed; {without_scores}",
              file=sys.stderr, flush=True)
        return NoScorer()
    try:
        return CaptionScorer(metrics)
    except MetricError as error:
        raise DataError(f"{error}\nTo go on without COCO scores, pass {NO_SCORING}: {without_scores}.") from None


def why_no_scoring() -> str:
    """What the COCO metrics miss on this machine (Java, pycocoevalcap), or '' when nothing."""
    found = {"Java (`java` on PATH)": shutil.which("java"), "pycocoevalcap": importlib.util.find_spec("pycocoevalcap")}
    return " and ".join(what for what, where in found.items() if where is None)
