"""Stage scoring: COCO metrics of the val captions with a CaptionScorer made once and reused,
against a scorer made anew for each evaluation (JVM start included), as older code did."""
from __future__ import annotations

import statistics

from evaluation.coco import CaptionScorer, MetricError


def stage_scoring(videos, captions: list, config, clock, args) -> dict:
    references = dict(zip(videos.video_ids, videos.references))
    hypotheses = {vid: c[0] for vid, c in zip(videos.video_ids, captions)}
    result = {"videos": len(videos), "paths": {}}
    try:
        start_seconds, _, scorer = clock(CaptionScorer, config.eval.metrics)
    except MetricError as error:
        return {"skipped": f"no COCO scoring: {error}"}
    try:
        scorer.score(references, hypotheses)                        # warm-up
        reused = [clock(scorer.score, references, hypotheses) for _ in range(args.repeats)]
    finally:
        scorer.close()

    def fresh():
        with CaptionScorer(config.eval.metrics) as new:
            return new.score(references, hypotheses)

    seconds = statistics.median(t[0] for t in reused)
    result["paths"]["fast"] = {"seconds": seconds, "all_seconds": [t[0] for t in reused],
                               "scorer_start_seconds": start_seconds,
                               "CIDEr": reused[0][2]["CIDEr"]}
    if not args.no_baseline:
        made = [clock(fresh) for _ in range(args.baseline_repeats)]
        result["paths"]["plain"] = {"seconds": statistics.median(t[0] for t in made),
                                    "all_seconds": [t[0] for t in made]}
    return result
