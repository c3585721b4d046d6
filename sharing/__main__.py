"""Share a trained model as a folder of JSON and safetensors files with a model card (docs/sharing.md).

    python -m sharing export runs/<run id> [--out DIR]      # default DIR: runs/<run id>/shared
    python -m sharing upload DIR user/name [--private]      # to the Hugging Face Hub
"""
from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import config as config_module
from evaluation.summary import flat_settings, option_text
from models import checkpoints
from sharing.hub import upload, write_folder
from utils import DataError, exit_status

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
    other = {k: v for k, v in payload.items() if k not in ("model", "vocab", "config", "format", "feature_extraction")}
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


def export(run_dir: str, out: str | None = None) -> str:
    """Write the shared folder of run_dir's best checkpoint and test scores, and say how to use it; its path."""
    best = os.path.join(run_dir, "best.pt")
    if not os.path.isfile(best):
        raise DataError(f"{run_dir} holds no best.pt; give a run folder of train.py (runs/<run id>)")
    payload = checkpoints.load(best)
    checkpoints.check_contents(payload, best)
    scores_path = os.path.join(run_dir, f"{payload['config']['corpus']['test_split']}_scores.json")
    scores = json.loads(Path(scores_path).read_text(encoding="utf-8")) if os.path.isfile(scores_path) else {}
    out = out or os.path.join(run_dir, "shared")
    write_folder(payload, out, scores_path, model_card(payload, scores, os.path.basename(os.path.normpath(run_dir))))
    print(f"written {out}; load it with python run.py --checkpoint {out}, share it with "
          f"python -m sharing upload {out} <user>/<name>")
    return out


def main(argv=None) -> int:
    parser = config_module.argument_parser(__doc__, prog="python -m sharing")
    commands = parser.add_subparsers(dest="command", required=True)
    exporting = commands.add_parser("export", help="a run folder's best checkpoint as a shared folder")
    exporting.add_argument("run_dir")
    exporting.add_argument("--out", default=None, help="the folder to write (must not exist)")
    uploading = commands.add_parser("upload", help="a shared folder to the Hugging Face Hub")
    uploading.add_argument("folder")
    uploading.add_argument("repo_id", help="user/name on the Hub")
    uploading.add_argument("--private", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "export":
        return exit_status(lambda: export(args.run_dir, args.out))
    return exit_status(lambda: print(f"uploaded to {upload(args.folder, args.repo_id, args.private)}"))


if __name__ == "__main__":
    sys.exit(main())
