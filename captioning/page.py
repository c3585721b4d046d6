"""One self-contained HTML page per evaluation (run.py writes <split>_page.html, its data as JSON in
the template page.html): browse, sort, filter, see each word's attention, and compare two evaluations.

    python -m captioning.page compare EVAL_A EVAL_B --out compare.html [--split test]

An EVAL is a folder written by run.py (or a file in it): its page, else its predictions and scores.
"""
from __future__ import annotations

import base64
import io
import json
import os
import sys

import numpy as np

from config import argument_parser
from evaluation.coco import PER_VIDEO_KEY
from evaluation.predictions import numeric, search_settings
from evaluation.split_cider_d import CIDER_D
from utils import DataError, atomic_write_bytes, exit_status, read_json

PAGE_METRICS = ("Bleu_4", "METEOR", "ROUGE_L", "CIDEr", CIDER_D)   # the per-video columns, when computed
ATTENTION_SCALE = 1000       # weights stored as integer thousandths
THUMB_WIDTH = 32             # pixels per frame in the strip
DATA_START, DATA_END = '<script id="data" type="application/json">', "</script>"
TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "page.html")


def page_name(split: str) -> str:
    return f"{split}_page.html"


def thumbnail_strip(images: np.ndarray) -> tuple:
    """The frames side by side as one WebP (JPEG without Pillow's WebP) data URI, and its height."""
    from PIL import Image, features
    height = max(8, min(2 * THUMB_WIDTH, round(THUMB_WIDTH * images.shape[1] / images.shape[2])))
    strip = Image.new("RGB", (THUMB_WIDTH * len(images), height))
    for column, frame in enumerate(images):
        strip.paste(Image.fromarray(frame).resize((THUMB_WIDTH, height), Image.BILINEAR), (column * THUMB_WIDTH, 0))
    buffer, kind = io.BytesIO(), "webp" if features.check("webp") else "jpeg"
    strip.save(buffer, kind.upper(), quality=60)
    return f"data:image/{kind};base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), height


def rounded_scores(scores: dict) -> dict:
    return {name: round(float(value), 2) for name, value in scores.items() if name in PAGE_METRICS}


def video_rows(predictions: list, scores: dict, references: dict, categories: dict) -> list:
    per_video = scores.get(PER_VIDEO_KEY, {})
    return [{"id": p["video_id"], "category": categories.get(p["video_id"]), "references": references[p["video_id"]],
             "runs": [{"caption": p["caption"], "scores": rounded_scores(per_video.get(p["video_id"], {}))}]}
            for p in predictions]


def split_page(out_dir: str, predictions: list, videos, scores: dict, config, checkpoint_path: str, frames) -> str:
    """Write the split's page into out_dir; frames: a SplitFrames."""
    stored = dict(zip(videos.video_ids, videos.n_frames))
    rows = video_rows(predictions, scores, dict(zip(videos.video_ids, videos.references)),
                      dict(zip(videos.video_ids, videos.categories)))
    for p, row in zip(predictions, rows):   # attention over the real frames in integer thousandths
        seen, run = frames.frames(p["video_id"], stored[p["video_id"]]), row["runs"][0]
        weights = np.asarray(p["attention"], dtype=np.float64)[:, :len(seen.numbers)]
        run.update(frames=list(map(int, seen.numbers)),
                   attention=np.rint(weights * ATTENTION_SCALE).astype(int).tolist())
        if seen.images is not None:
            run["thumbs"], run["thumbs_height"] = thumbnail_strip(seen.images)
    path = os.path.join(out_dir, page_name(videos.name))
    write_page(path, one_evaluation({"checkpoint": checkpoint_path, "corpus": config.corpus.name, "split": videos.name,
                                     "search": search_settings(config.eval)}, scores, rows))
    return path


def one_evaluation(header: dict, scores: dict, rows: list) -> dict:
    header["scores"] = {k: round(v, 2) for k, v in numeric(scores).items()}
    return {"runs": [header], "metrics": present_metrics(rows), "attention_scale": ATTENTION_SCALE,
            "thumb_width": THUMB_WIDTH, "videos": rows}


def present_metrics(rows: list) -> list:
    return [m for m in PAGE_METRICS if any(m in run["scores"] for row in rows for run in row["runs"])]


def write_page(path: str, data: dict) -> None:
    """The template with the data inlined ('<' escaped, so no caption can end the script)."""
    with open(TEMPLATE, encoding="utf-8") as handle:
        template = handle.read()
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c")
    text = template.replace(DATA_START + DATA_END, DATA_START + payload + DATA_END, 1)
    atomic_write_bytes(path, lambda handle: handle.write(text.encode("utf-8")))


def read_page(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        start = text.index(DATA_START) + len(DATA_START)
        return json.loads(text[start:text.index(DATA_END, start)])
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise DataError(f"{path}: not a page written by run.py ({type(error).__name__}: {error}); "
                        "write it again with run.py") from None


def load_evaluation(path: str, split: str) -> dict:
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    page = path if path.endswith(".html") else os.path.join(folder, page_name(split))
    if os.path.isfile(page):
        return read_page(page)
    predictions_path = os.path.join(folder, f"{split}_predictions.json")
    if not os.path.isfile(predictions_path):
        raise DataError(f"{path}: neither {page_name(split)} nor {split}_predictions.json is there; give "
                        f"a folder written by `python run.py --out FOLDER` (or pass --split)")
    scores_path, fix = os.path.join(folder, f"{split}_scores.json"), "write it again with run.py"
    scores = read_json(scores_path, fix, error_type=True) if os.path.isfile(scores_path) else {}
    predictions = read_json(predictions_path, fix, error_type=True)
    rows = video_rows(predictions, scores, {p["video_id"]: p["references"] for p in predictions}, {})
    return one_evaluation({"checkpoint": folder, "corpus": None, "split": split, "search": {}}, scores, rows)


def compare(a: dict, b: dict, names=("A", "B")) -> dict:
    a_ids, b_rows = {row["id"] for row in a["videos"]}, {row["id"]: row for row in b["videos"]}
    only_a, only_b = a_ids - b_rows.keys(), b_rows.keys() - a_ids
    if only_a or only_b:
        raise DataError(f"{names[0]} and {names[1]} are not evaluations of the same videos: {len(only_a)} "
                        f"only in {names[0]} (e.g. {sorted(only_a)[:3]}), {len(only_b)} only in {names[1]} "
                        f"(e.g. {sorted(only_b)[:3]}); compare two evaluations of one split")
    rows = []
    for row in a["videos"]:
        run_a, run_b = row["runs"][0], b_rows[row["id"]]["runs"][0]
        if run_b.get("frames") == run_a.get("frames") and "thumbs" in run_a:   # one strip serves both
            run_b = {k: v for k, v in run_b.items() if k not in ("thumbs", "thumbs_height")}
        rows.append({**row, "category": row["category"] or b_rows[row["id"]]["category"], "runs": [run_a, run_b]})
    return {**a, "runs": [a["runs"][0], b["runs"][0]], "names": list(names), "videos": rows,
            "metrics": present_metrics(rows)}


def main(argv=None) -> int:
    parser = argument_parser(__doc__, prog="python -m captioning.page")
    commands = parser.add_subparsers(dest="command", required=True)
    compare_parser = commands.add_parser("compare", help="one page of two evaluations of the same split")
    compare_parser.add_argument("eval_a", help="an evaluation: the folder run.py wrote, or its page")
    compare_parser.add_argument("eval_b", help="the other evaluation of the same split")
    compare_parser.add_argument("--split", default="test", help="the split's name (default: test)")
    compare_parser.add_argument("--out", required=True, help="the comparison page to write (.html)")
    args = parser.parse_args(argv)

    def build() -> None:
        a, b = (load_evaluation(path, args.split) for path in (args.eval_a, args.eval_b))
        write_page(args.out, compare(a, b, (args.eval_a, args.eval_b)))
        print(f"comparison page written to {args.out}")

    return exit_status(build)


if __name__ == "__main__":
    sys.exit(main())
