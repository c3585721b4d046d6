"""The model card (README.md) of a shared model folder: corpus, features, scores, training command."""
from __future__ import annotations

import json
import shlex

import config as config_module
from evaluation.summary import flat_settings, option_text

SCORE_NAMES = ("Bleu_1", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "CIDEr-D")


def training_command(saved: dict) -> str:
    """`python train.py --preset P --field value ...`: the preset that leaves the fewest fields to name."""
    wanted, options = flat_settings(saved), {}
    for preset in config_module.PRESETS:
        base = flat_settings(config_module.build(preset).to_dict())
        options[preset] = {key: value for key, value in wanted.items() if base.get(key) != value}
    preset = min(options, key=lambda name: len(options[name]))
    words = ["python", "train.py", "--preset", preset]
    for key, value in options[preset].items():
        words += [f"--{key}", "none" if value is None else option_text(value)]
    return shlex.join(words)


def model_card(payload: dict, scores: dict, run_name: str) -> str:
    saved = payload["config"]
    corpus, backbones = saved["corpus"]["name"], saved["features"]["backbones"]
    shown = {name: scores[name] for name in SCORE_NAMES if isinstance(scores.get(name), (int, float))}
    score_rows = (["| " + " | ".join(shown) + " |", "|" + " --- |" * len(shown),
                   "| " + " | ".join(f"{value:.1f}" for value in shown.values()) + " |"]
                  if shown else ["not scored (the run trained without COCO metrics)"])
    extraction = payload.get("feature_extraction") or {}
    other = {key: value for key, value in payload.items()
             if key not in ("model", "vocab", "config", "format", "feature_extraction")}
    lines = [
        "---", "tags:", "- video-captioning", "- sa-lstm", "---", "",
        f"# SA-LSTM on {corpus}: {'+'.join(backbones)}", "",
        "A soft temporal-attention LSTM video captioner (Yao et al., ICCV 2015), trained with the "
        "SA-LSTM re-implementation (run `" + run_name + "`). It captions a clip from its frame "
        "features; give it features made the same way.", "",
        "## Use", "", "```bash",
        "python run.py --checkpoint <this folder or its Hub id>                 # the test split's captions and scores",
        "python run.py --checkpoint <this folder or its Hub id> --video clip.mp4  # your own video",
        "```", "",
        f"## Test scores ({corpus}, {saved['corpus']['test_split']} split, ×100)", "", *score_rows, "",
        "## Features", "",
        f"Backbones {', '.join(backbones)} ({payload['feature_size']}-d per frame, "
        f"{saved['features']['n_frames']} frames per clip), frame sampling "
        f"{payload.get('feature_sampling') or 'not recorded'}.", "",
        *(["Extraction record (weights and preprocessing per backbone):", "", "```json",
            json.dumps(extraction, indent=1, sort_keys=True), "```", ""] if extraction else
          ["No extraction record: the features were imported from another tool or are the demo's.", ""]),
        "## Training", "", "```bash", training_command(saved), "```", "",
        "Other records of the checkpoint:", "", "```json", json.dumps(other, indent=1, sort_keys=True), "```", "",
        "The whole configuration is in `config.json`, the vocabulary in `vocab.json`.", "",
    ]
    return "\n".join(lines)
