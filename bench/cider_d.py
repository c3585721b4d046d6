"""python -m bench.cider_d: how long the SCST reward takes, batched (evaluation/cider_d.py) against
one caption at a time in plain Python (evaluation/cider_reference.py, and pycocoevalcap's scorer).

The references are the MSVD training captions shipped in data/MSVD/annotations (1,200 clips,
about 40 captions each); the candidates are, for each of --clips clips, --samples captions drawn
from the references of that clip or of another one, so that they overlap their references as
real samples do. Every path scores the same candidates; their results are checked to agree.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from pycocoevalcap.cider.cider_scorer import CiderScorer

from bench.timing import Clock
from evaluation.cider_d import CiderD
from evaluation.cider_reference import cider_d, document_frequency
from loader.vocabulary import EOS_ID, PAD_ID, Vocabulary
from utils import pick_device

MSVD_TRAIN = Path("data/MSVD/annotations/sents_train_lc_nopunc.txt")


def read_references(path: Path) -> list:
    by_video = defaultdict(list)
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            video, _, caption = line.rstrip("\n").partition("\t")
            if caption.split():
                by_video[video].append(caption.split())
    return list(by_video.values())


def sample_candidates(references: list, clips: int, samples: int, seed: int) -> tuple:
    """Token lists and their clips: a reference of the same clip (2 in 3) or of any clip."""
    rng = random.Random(seed)
    chosen = rng.sample(range(len(references)), clips)
    captions, owners = [], []
    for clip in chosen:
        for _ in range(samples):
            source = clip if rng.random() < 2 / 3 else rng.randrange(len(references))
            captions.append(rng.choice(references[source])[:30])
            owners.append(clip)
    return captions, owners


def encode(captions: list, vocab: Vocabulary) -> torch.Tensor:
    rows = torch.full((len(captions), max(map(len, captions)) + 1), PAD_ID, dtype=torch.long)
    for i, tokens in enumerate(captions):
        rows[i, :len(tokens) + 1] = torch.tensor(vocab.encode(tokens) + [EOS_ID])
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cider_d", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--references", type=Path, default=MSVD_TRAIN)
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (on a loaded machine 1 beats waiting for a second core)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    references = read_references(args.references)
    vocab = Vocabulary.build(t for refs in references for t in refs)
    start = time.perf_counter()
    scorer = CiderD(references, vocab)
    build_seconds = time.perf_counter() - start
    captions, owners = sample_candidates(references, args.clips, args.samples, args.seed)
    candidates, video_index = encode(captions, vocab).to(device), torch.tensor(owners, device=device)
    clock = Clock(device)
    scorer.score(candidates, video_index)                      # warm-up: tables copied to the device
    times = [clock(scorer.score, candidates, video_index)[0] for _ in range(args.repeats)]
    batched = scorer.score(candidates, video_index).cpu()

    start = time.perf_counter()
    df = document_frequency(references, 4)
    df_seconds = time.perf_counter() - start
    start = time.perf_counter()
    plain = [cider_d(c, references[o], df, len(references)) for c, o in zip(captions, owners)]
    plain_seconds = time.perf_counter() - start
    worst = max(abs(float(b) - p) for b, p in zip(batched, plain))

    coco = CiderScorer(n=4, sigma=6.0)       # its df comes from these 1000 pairs: timing only
    for tokens, owner in zip(captions, owners):
        coco += (" ".join(tokens), [" ".join(r) for r in references[owner]])
    start = time.perf_counter()
    coco.compute_score()
    coco_seconds = time.perf_counter() - start

    times.sort()
    print(f"references: {len(references)} clips, {sum(map(len, references))} captions; "
          f"candidates: {len(captions)} ({args.clips} clips x {args.samples}), "
          f"mean length {sum(map(len, captions)) / len(captions):.1f} words; device {device}; "
          f"torch threads {torch.get_num_threads()}")
    print(f"CiderD built once in {build_seconds:.2f} s")
    print(f"batched CiderD.score: median {1e3 * times[len(times) // 2]:.1f} ms, "
          f"min {1e3 * times[0]:.1f} ms over {args.repeats} calls")
    print(f"plain Python (evaluation/cider_reference.py): {1e3 * plain_seconds:.0f} ms "
          f"(+ {1e3 * df_seconds:.0f} ms for the document frequencies, once); "
          f"largest difference from batched {worst:.2e}")
    print(f"pycocoevalcap CiderScorer.compute_score on the same 1000 pairs: {1e3 * coco_seconds:.0f} ms")
    print(f"mean reward {float(batched.mean()):.3f}")
    return 0 if worst < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
