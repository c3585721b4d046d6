"""The evaluation page of a large split: its size, and its load and sort time in headless Chromium.

    python -m bench.page --videos 670 --work /tmp/page_bench

Builds a demo corpus whose test split has --videos clips, trains a tiny model one epoch, runs run.py on the test
split, then opens the page --repeats times sorted by CIDEr with a word's attention shown (a page already under
--work is measured again): when its script had built, sorted and filtered every row, and Chromium's wall time."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

import config as config_module


def find_chromium():
    return next((path for path in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if path), None)


def dump_dom(path: str, fragment: str = "", chromium: str | None = None, timeout_s: float = 120) -> str:
    """The page's DOM after its script ran, from headless Chromium; fragment: the view (after '#')."""
    url = "file://" + os.path.abspath(path) + (f"#{fragment}" if fragment else "")
    result = subprocess.run([chromium or find_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                             "--dump-dom", url], capture_output=True, text=True, timeout=timeout_s)
    if result.returncode != 0 or "<body" not in result.stdout:
        raise RuntimeError(f"chromium could not open {url}: {result.stderr[-800:]}")
    return result.stdout


def build_page(work: str, n_videos: int) -> str:
    import run as run_module
    import train as train_module
    from evaluation.scorer import why_no_scoring
    from splits.Demo import build_demo
    run_root = os.path.join(work, "runs")
    metrics = {} if not why_no_scoring() else {"eval.metrics": [], "train.select_metric": "CIDEr-D"}
    config = config_module.build("Demo", **{"corpus.data_root": os.path.join(work, "data"), "train.run_root": run_root,
                                            "model.hidden_size": 32, "model.embedding_size": 16, "train.epochs": 1,
                                            "model.attention_size": 16, "train.device": "cpu", **metrics})
    build_demo(config, split_sizes=(200, 20, n_videos))
    train_module.train(config)
    out = os.path.join(work, "eval")
    argv = ["--checkpoint", os.path.join(run_root, train_module.run_id(config), "best.pt"), "--out", out]
    started = time.perf_counter()
    if run_module.main(argv + (["--eval.metrics", ""] if metrics else [])) != 0:
        raise SystemExit("run.py failed")
    print(f"run.py (decode, score, page): {time.perf_counter() - started:.1f} s")
    return os.path.join(out, "test_page.html")


def main(argv=None) -> None:
    parser = config_module.argument_parser(__doc__, prog="python -m bench.page")
    parser.add_argument("--videos", type=int, default=3000, help="clips in the test split (default 3000)")
    parser.add_argument("--work", default="runs/page_bench", help="folder for the corpus, run and page")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("no Chromium found (apt-get install chromium)")
    page = os.path.join(args.work, "eval", "test_page.html")
    page = page if os.path.isfile(page) else build_page(args.work, args.videos)
    from captioning.page import read_page
    data = read_page(page)
    metric = "CIDEr" if "CIDEr" in data["metrics"] else data["metrics"][0]
    fragment = f"sort={metric}&dir=asc&word={data['videos'][0]['id']}.0.0"
    print(f"page: {len(data['videos'])} videos, {os.path.getsize(page) / 1e6:.1f} MB")
    for _ in range(args.repeats):
        started = time.perf_counter()
        dom = dump_dom(page, fragment, chromium)
        wall = time.perf_counter() - started
        rows = len(re.findall(r'<div class="row[^"]*" data-i=', dom))
        ready, sorting = (float(re.search(rf'data-{key}="([0-9.]+)"', dom).group(1)) for key in ("ready", "apply-ms"))
        print(f"{rows} rows; script done at {ready / 1000:.2f} s after navigation (sort, filter and "
              f"attention view: {sorting:.0f} ms); chromium wall time {wall:.2f} s")


if __name__ == "__main__":
    main()
