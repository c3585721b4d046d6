"""The evaluation page of a large split: its size, and its load and sort time in headless Chromium.

    python -m bench.page                       # a 3,000-clip demo test split (MSR-VTT's test size)
    python -m bench.page --videos 670 --work /tmp/page_bench

Builds a demo corpus with a test split of --videos clips under --work, trains a tiny model one
epoch, runs run.py on the test split (COCO metrics when Java is there, else the in-process
CIDEr-D), then opens the page in headless Chromium --repeats times, sorted by CIDEr with a word's
attention shown. Reports the page's size; the time until its script has built, sorted and
filtered every row (performance.now() at its end, from the start of navigation), and of that
sort alone; and Chromium's whole wall time (its start included). A page already under --work
is measured again without being rebuilt.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import time

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium():
    """The headless browser's path, or None."""
    return next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)


def dump_dom(path: str, fragment: str = "", chromium: str | None = None, timeout_s: float = 120) -> str:
    """The page's DOM after its script ran, from headless Chromium; fragment: the view (after '#')."""
    url = "file://" + os.path.abspath(path) + (f"#{fragment}" if fragment else "")
    result = subprocess.run([chromium or find_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                             "--dump-dom", url], capture_output=True, text=True, timeout=timeout_s)
    if result.returncode != 0 or "<body" not in result.stdout:
        raise RuntimeError(f"chromium could not open {url}: {result.stderr[-800:]}")
    return result.stdout


def ready_ms(dom: str) -> float:
    """When the page's script had finished, in ms from the start of navigation."""
    return float(re.search(r'data-ready="([0-9.]+)"', dom).group(1))


def build_page(work: str, n_videos: int) -> str:
    import config as config_module
    import run as run_module
    import train as train_module
    from evaluation.scorer import why_no_scoring
    from splits.Demo import build_demo
    data_root, run_root = os.path.join(work, "data"), os.path.join(work, "runs")
    metrics = {} if not why_no_scoring() else {"eval.metrics": [], "train.select_metric": "CIDEr-D"}
    config = config_module.build("Demo", **{"corpus.data_root": data_root, "train.run_root": run_root,
                                            "model.hidden_size": 32, "model.embedding_size": 16,
                                            "model.attention_size": 16, "train.epochs": 1,
                                            "train.device": "cpu", **metrics})
    build_demo(config, split_sizes=(200, 20, n_videos))
    train_module.train(config)
    checkpoint = os.path.join(run_root, train_module.run_id(config), "best.pt")
    out = os.path.join(work, "eval")
    argv = ["--checkpoint", checkpoint, "--out", out] + (["--eval.metrics", ""] if metrics else [])
    started = time.perf_counter()
    if run_module.main(argv) != 0:
        raise SystemExit("run.py failed")
    print(f"run.py (decode, score, page): {time.perf_counter() - started:.1f} s")
    return os.path.join(out, "test_page.html")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.page", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=3000, help="clips in the test split (default 3000)")
    parser.add_argument("--work", default="runs/page_bench", help="folder for the corpus, run and page")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("no Chromium found (apt-get install chromium)")
    page = os.path.join(args.work, "eval", "test_page.html")
    if not os.path.isfile(page):
        page = build_page(args.work, args.videos)
    from captioning.page import read_page
    data = read_page(page)
    first = data["videos"][0]
    metric = "CIDEr" if "CIDEr" in data["metrics"] else data["metrics"][0]
    fragment = f"sort={metric}&dir=asc&word={first['id']}.0.0"
    print(f"page: {len(data['videos'])} videos, {os.path.getsize(page) / 1e6:.1f} MB")
    for _ in range(args.repeats):
        started = time.perf_counter()
        dom = dump_dom(page, fragment, chromium)
        wall = time.perf_counter() - started
        rows = len(re.findall(r'<div class="row[^"]*" data-i=', dom))
        sorting = float(re.search(r'data-apply-ms="([0-9.]+)"', dom).group(1))
        print(f"{rows} rows; script done at {ready_ms(dom) / 1000:.2f} s after navigation (sort, filter and "
              f"attention view: {sorting:.0f} ms); chromium wall time {wall:.2f} s")


if __name__ == "__main__":
    main()
