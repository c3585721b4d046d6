"""Share a trained model as a folder of JSON and safetensors files with a model card (docs/sharing.md).

    python -m sharing export runs/<run id> [--out DIR]      # default DIR: runs/<run id>/shared
    python -m sharing upload DIR user/name [--private]      # to the Hugging Face Hub
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import config as config_module
from models import checkpoints
from sharing.card import model_card
from sharing.folder import write_folder
from sharing.hub import upload
from utils import DataError, exit_status


def export(run_dir: str, out: str | None = None) -> str:
    """Write the shared folder of run_dir's best checkpoint and test scores; its path."""
    best = os.path.join(run_dir, "best.pt")
    if not os.path.isfile(best):
        raise DataError(f"{run_dir} holds no best.pt; give a run folder of train.py (runs/<run id>)")
    payload = checkpoints.load(best)
    checkpoints.check_contents(payload, best)
    test_split = payload["config"]["corpus"]["test_split"]
    scores_path = os.path.join(run_dir, f"{test_split}_scores.json")
    scores = json.loads(Path(scores_path).read_text(encoding="utf-8")) if os.path.isfile(scores_path) else {}
    out = out or os.path.join(run_dir, "shared")
    name = os.path.basename(os.path.normpath(run_dir))
    write_folder(payload, out, scores_path, model_card(payload, scores, name))
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
        def export_run() -> None:
            out = export(args.run_dir, args.out)
            print(f"written {out}; load it with python run.py --checkpoint {out}, share it with "
                  f"python -m sharing upload {out} <user>/<name>")
        return exit_status(export_run)
    return exit_status(lambda: print(f"uploaded to {upload(args.folder, args.repo_id, args.private)}"))


if __name__ == "__main__":
    sys.exit(main())
