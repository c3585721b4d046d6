"""Extract frame features from video files into <data_root>/<corpus>/features/<corpus>_<backbone>.hdf5.

    python -m extraction --videos data/MSVD/videos --corpus.name MSVD

Runs again skip the videos already extracted. Exit status: 0 when every video is in the file, 1 when
some could not be read (the others are written), 2 on bad options. Recipes: docs/features.md.
"""
from __future__ import annotations

import os
import sys

import config as config_module
import distributed
from extraction.backbones import BACKBONES, DEFAULT_BACKBONE, build_backbone, canonical_name, resolve_device
from extraction.extract import find_videos
from extraction.parts import extract_on_ranks
from extraction.store import DiskFull
from extraction.video import DEFAULT_EVERY_N, sampling_name
from splits.layout import corpus_paths
from utils import DataError


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = config_module.argument_parser(__doc__, prog="python -m extraction")
    parser.add_argument("--videos", nargs="+", metavar="DIR_OR_FILE",
                        help="video files, or folders whose video files (.avi, .mp4, ...) are taken")
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE,
                        help=f"one of {', '.join(BACKBONES)}, or a torchvision classifier name "
                             f"(resnet50, vgg19, ...) with --weights (default {DEFAULT_BACKBONE})")
    parser.add_argument("--weights", default=None, metavar="PATH",
                        help="local state dict file of the backbone (required for torchvision ones); for "
                             "CLIP and VideoMAE a local folder or a Hugging Face id (default: the "
                             "published weights, downloaded by transformers where there is network)")
    sampling = parser.add_mutually_exclusive_group()
    sampling.add_argument("--every_n", type=int, default=DEFAULT_EVERY_N, metavar="N",
                          help=f"keep frames 0, N, 2N, ... (default {DEFAULT_EVERY_N})")
    sampling.add_argument("--n_frames", type=int, default=None, metavar="K",
                          help="keep K frames equally spaced over the whole clip instead")
    parser.add_argument("--output", default=None, metavar="PATH",
                        help="HDF5 file to write (default: from the config, "
                             "<data_root>/<corpus>/features/<corpus>_<backbone>.hdf5)")
    parser.add_argument("--batch_size", type=int, default=64,
                        help="frames per batch; a video backbone's clips count all their frames (default 64)")
    parser.add_argument("--device", default="auto", help="auto (GPU when there is one), cpu, cuda, cuda:N")
    parser.add_argument("--workers", type=int, default=2, help="threads decoding ahead (default 2)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    parser.add_argument("--list_backbones", action="store_true", help="list the backbones and exit")
    config_module.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.list_backbones:
        for spec in BACKBONES.values():
            print(f"{spec.name:<21} D={spec.feature_size:<5} {spec.description}")
        print("any torchvision classifier name (with torchvision and --weights): D = its last layer's input")
        print("D is that of the published weights; other weights of the architecture may give another")
        return 0
    if not args.videos:
        parser.error("--videos is required")
    try:
        videos = find_videos(args.videos)
        if not videos:
            raise DataError(f"no video files in {' '.join(args.videos)}")
        name = canonical_name(args.backbone) or args.backbone
        output = args.output
        if output is None:
            if not any(arg.split("=")[0] in ("--preset", "--corpus.name") for arg in argv):  # else the demo corpus
                raise DataError("say where the features go: --corpus.name MSVD (or --preset MSVD) writes "
                                f"<data_root>/MSVD/features/MSVD_{name}.hdf5; or give --output PATH")
            corpus = config_module.from_args(args).corpus
            output = corpus_paths(corpus.data_root, corpus.name).feature_file(corpus.name, name)
        ranks = distributed.join(resolve_device(args.device))   # torchrun: a share of the videos each
        backbone = build_backbone(name, args.weights, str(ranks.device))
        if ranks.is_main:
            print(f"{len(videos)} videos -> {output} ({backbone.name}, D={backbone.feature_size}, "
                  f"{sampling_name(args.every_n, args.n_frames)}, {backbone.device}"
                  f"{f', {ranks.world_size} ranks' if ranks.active else ''})", file=sys.stderr)
        summary = extract_on_ranks(videos, output, backbone, ranks, every_n=args.every_n,
                                   n_frames=args.n_frames, batch_size=args.batch_size,
                                   workers=args.workers, progress=not args.no_progress and ranks.is_main)
    except (DataError, config_module.ConfigError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        if isinstance(error, DiskFull):   # HDF5 crashes at interpreter exit on a file it could not flush
            sys.stdout.flush(), sys.stderr.flush()
            distributed.leave()
            os._exit(2)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the videos finished so far are saved; run the same command again to "
              "extract the rest", file=sys.stderr)
        return 130
    finally:
        distributed.leave()
    print(summary)
    return 1 if summary.failed and ranks.is_main else 0    # torchrun: one failure report, not one a rank


if __name__ == "__main__":
    sys.exit(main())
