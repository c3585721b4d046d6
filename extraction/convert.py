"""Import frame features made by other tools into <data_root>/<corpus>/features/<corpus>_<name>.hdf5.

    python -m extraction.convert feats/ --corpus.name MSVD --name ResNet152 --every_n 5

SOURCE: a folder of one file per video (.npy, .npz, .pkl) or an HDF5 file. With any problem nothing
is written (exit status 2). Layouts and fixes: docs/sharing.md.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import sys
from typing import Optional

import h5py
import numpy as np

import config as config_module
from extraction.store import FeatureStore
from extraction.video import sampling_name
from splits.layout import corpus_paths
from utils import DataError, exit_status

VIDEO_EXTENSIONS = (".avi", ".mp4", ".webm", ".mkv", ".mov", ".3gp", ".flv")
FILE_EXTENSIONS = (".npy", ".npz", ".pkl", ".pickle")
PICKLE_EXTENSIONS = (".pkl", ".pickle")
SIDE_FILES = ("_fps", "_timestamps_ms")        # v-iashin/video_features' files beside the features
LENGTH_NAMES = ("lengths", "n_frames")


def shown(items: list, count: int = 5) -> str:
    return ", ".join(items[:count]) + (", ..." if len(items) > count else "")


def strip_extensions(name: str) -> str:
    for extensions in (FILE_EXTENSIONS + (".h5", ".hdf5"), VIDEO_EXTENSIONS):
        stem, extension = os.path.splitext(name)
        if extension.lower() in extensions:
            name = stem
    return name


def candidate_names(stem: str) -> list:
    """The stem, then the stem with one, two, ... trailing '_suffix' parts cut."""
    names = [stem]
    while "_" in names[-1].strip("_"):
        names.append(names[-1].rsplit("_", 1)[0])
    return names


def as_array(value, where: str, allow_pickle: bool):
    """A numeric array, or the line saying why value is none."""
    array = np.asarray(value)
    if array.dtype == object and allow_pickle:
        try:
            array = np.asarray(array.tolist(), dtype=np.float32)
        except (TypeError, ValueError):
            return f"{where} holds objects that are not numbers; save the features as a float array"
    if array.dtype.kind not in "fiu":
        return f"{where} holds {array.dtype} data, not numbers; save the features as a float array"
    return array


def read_file(path: str, allow_pickle: bool, key: Optional[str]):
    extension = os.path.splitext(path)[1].lower()
    if extension in PICKLE_EXTENSIONS and not allow_pickle:
        return (f"{path} is a pickle, which can run code when read; add --allow_pickle if you trust "
                "it, or save it as .npy")
    try:
        if extension in PICKLE_EXTENSIONS:
            with open(path, "rb") as handle:
                return as_array(pickle.load(handle), path, allow_pickle)
        loaded = np.load(path, allow_pickle=allow_pickle)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                names = list(loaded.files)
                if key is None and len(names) != 1:
                    return f"{path} holds the arrays {names}; name the feature array with --key"
                if (key or names[0]) not in names:
                    return f"{path} has no array {key!r} (it holds {names}); give another --key"
                return as_array(loaded[key or names[0]], path, allow_pickle)
        return as_array(loaded, path, allow_pickle)
    except ValueError as error:
        if "allow_pickle" in str(error):
            return (f"{path} holds Python objects (a pickle), which can run code when read; add "
                    "--allow_pickle if you trust it, or save it as a float array")
        return f"{path} cannot be read ({error}); save it again with numpy.save"
    except (OSError, EOFError, pickle.UnpicklingError) as error:
        return f"{path} cannot be read ({error}); copy or save it again"


def folder_entries(folder: str, allow_pickle: bool, key: Optional[str], feature: Optional[str],
                   notes: list) -> list:
    """(where, names to try, read() -> array or problem line) for each feature file."""
    entries, skipped = [], []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        stem = strip_extensions(name)
        if (not os.path.isfile(path) or os.path.splitext(name)[1].lower() not in FILE_EXTENSIONS
                or stem.endswith(SIDE_FILES) or (feature is not None and not stem.endswith(f"_{feature}"))):
            skipped.append(name)
            continue
        stem = stem[:-len(feature) - 1] if feature is not None else stem
        entries.append((path, candidate_names(stem), lambda path=path: read_file(path, allow_pickle, key)))
    if skipped:
        notes.append(f"{len(skipped)} files of {folder} are no feature files and were left out ({shown(skipped)})")
    return entries


def hdf5_entries(source: h5py.File, path: str, feature: Optional[str]) -> list:
    names = []
    source.visit(names.append)
    datasets = {name: source[name] for name in names if isinstance(source[name], h5py.Dataset)}
    stacked = [name for name, d in datasets.items() if d.ndim == 3 and d.dtype.kind in "fiu"]
    id_lists = [name for name, d in datasets.items() if d.ndim == 1 and d.dtype.kind in "SOU"]
    if len(stacked) == 1 and id_lists:         # one (N, T, D) array and its list of video ids
        features = datasets[stacked[0]]
        fitting = [name for name in id_lists if len(datasets[name]) == len(features)]
        if len(fitting) != 1:
            raise DataError(f"{path}: the (N, T, D) array /{stacked[0]} needs one 1-D list of its "
                            f"{len(features)} video ids; found {['/' + n for n in id_lists]}")
        ids = [v.decode() if isinstance(v, bytes) else str(v) for v in datasets[fitting[0]][()]]
        lengths = next((datasets[name][()] for name in datasets
                        if name.split("/")[-1] in LENGTH_NAMES and datasets[name].shape == (len(ids),)), None)
        return [(f"{path}:/{stacked[0]}[{row}] ({video})", candidate_names(strip_extensions(video)),
                 lambda row=row: features[row] if lengths is None else features[row, :int(lengths[row])])
                for row, video in enumerate(ids)]
    entries = []
    for name, dataset in datasets.items():
        parts = name.split("/")
        if feature is not None:
            if parts[-1] != feature or len(parts) < 2:
                continue
            parts = parts[:-1]                 # <video>/<feature>: one group per video
        where = f"{path}:/{name}"
        entries.append((where, candidate_names(strip_extensions(parts[-1])) + parts[-2:-1],
                        lambda dataset=dataset, where=where: as_array(dataset[()], where, False)))
    return entries


def problems_of(where: str, array) -> Optional[str]:
    if isinstance(array, str):
        return array
    if array.ndim != 2:
        return (f"{where} holds a {array.ndim}-D array of shape {array.shape}; expected (n_frames, D), "
                "one row per frame")
    if array.shape[0] == 0 or array.shape[1] == 0:
        return f"{where} holds an empty array of shape {array.shape}; extract that video again"
    if not np.isfinite(array).all():
        return f"{where} holds NaN or inf; extract that video again"
    return None


def convert(source: str, output: str, name: str, sampling: str, ids: list, feature_key,
            allow_pickle: bool = False, key: Optional[str] = None, feature: Optional[str] = None,
            allow_missing: bool = False, report=print) -> int:
    """The number of videos written; on any problem a DataError of one line each, and nothing written."""
    if os.path.exists(output):
        raise DataError(f"{output} exists; move it away or choose another --name (it is left as it is)")
    notes, problems = [], []
    with contextlib.ExitStack() as stack:
        if os.path.isdir(source):
            entries = folder_entries(source, allow_pickle, key, feature, notes)
        elif os.path.isfile(source) and h5py.is_hdf5(source):
            try:
                handle = stack.enter_context(h5py.File(source, "r"))
            except OSError as error:
                raise DataError(f"{source} is not a readable HDF5 file ({error}); copy it again") from None
            entries = hdf5_entries(handle, source, feature)
        else:
            raise DataError(f"{source} is neither a folder of .npy/.npz files nor an HDF5 file; give one")
        alias, candidates = {}, {candidate for _, names, _ in entries for candidate in names}
        for vid in ids:
            alias.setdefault(feature_key(candidates, vid), vid)
        partial = output + ".partial"           # an interrupted import's is started afresh
        if os.path.exists(partial):
            os.remove(partial)
        stack.callback(lambda: os.path.exists(partial) and os.remove(partial))
        store, origin, sizes = None, {}, {}
        for where, names, read in entries:
            vid = next((alias[c] for c in names if c in alias), None)
            if vid is None:
                problems.append(f"{where}: {names[0]!r} is no video of the corpus; rename it to a video id "
                                "(extensions and a _<feature> suffix are stripped) or remove it")
                continue
            if vid in origin:
                problems.append(f"{where} and {origin[vid]} are both video {vid}; keep one (--feature NAME "
                                "picks the files named <video>_NAME)")
                continue
            origin[vid], array = where, read()
            if problem := problems_of(where, array):
                problems.append(problem)
                continue
            sizes.setdefault(array.shape[1], []).append(where)
            if len(sizes) > 1 or problems:
                continue                       # checked on, written no more
            if store is None:
                store = stack.enter_context(FeatureStore(partial, name, array.shape[1], sampling, report,
                                                         {"source": os.path.abspath(source)}))
            store.write(vid, array)
        if len(sizes) > 1:
            problems.append("mixed feature sizes: " + "; ".join(f"D={size} in {len(wheres)} ({shown(wheres, 2)})"
                            for size, wheres in sizes.items()) + "; one file holds one kind of feature")
        missing = [vid for vid in ids if vid not in origin]
        if missing and not allow_missing:
            problems.append(f"{len(missing)} of the {len(ids)} corpus videos have no features in {source} "
                            f"({shown(missing)}); add them, or import the others alone with --allow_missing")
        if store is None and not problems:
            problems.append(f"{source} holds no features of the corpus's videos")
        if problems:
            raise DataError("\n".join(problems) + f"\nnothing was written to {output}")
        store.close()
        os.replace(partial, output)
    for note in notes + ([f"{len(missing)} corpus videos have no features"] if missing else []):
        report(f"note: {note}")
    return sum(len(wheres) for wheres in sizes.values())


def main(argv=None) -> int:
    parser = config_module.argument_parser(__doc__, prog="python -m extraction.convert")
    parser.add_argument("source", help="a folder of .npy/.npz files or an HDF5 file")
    parser.add_argument("--name", required=True,
                        help="the features' name, as --features.backbones takes it (e.g. ResNet152)")
    sampling = parser.add_mutually_exclusive_group(required=True)
    sampling.add_argument("--every_n", type=int, metavar="N", help="the features are of every N-th frame")
    sampling.add_argument("--n_frames", type=int, metavar="K", help="of K frames equally spaced")
    sampling.add_argument("--fps", type=float, metavar="F", help="of F frames per second")
    parser.add_argument("--feature", metavar="NAME", help="take only the files named <video>_NAME (or <video>/NAME)")
    parser.add_argument("--key", help="the array of each .npz file to take")
    for flag, text in (("--allow_pickle", "read pickled files (.pkl, object arrays): only files you trust"),
                       ("--allow_missing", "write the features found even when corpus videos have none")):
        parser.add_argument(flag, action="store_true", help=text)
    parser.add_argument("--annotations", metavar="DIR",
                        help="the corpus's annotation folder (default: as splits/ finds it)")
    parser.add_argument("--output", metavar="PATH", help="default <data_root>/<corpus>/features/<corpus>_<name>.hdf5")
    config_module.add_arguments(parser)
    args = parser.parse_args(argv)
    if not any(arg.split("=")[0] in ("--preset", "--corpus.name") for arg in (argv or sys.argv[1:])):
        parser.error("name the corpus the features belong to: --corpus.name MSVD (or MSR-VTT)")
    if any(value is not None and value <= 0 for value in (args.every_n, args.n_frames, args.fps)):
        parser.error("--every_n, --n_frames and --fps must be positive")
    sampling_text = f"fps={args.fps:g}" if args.fps else sampling_name(args.every_n, args.n_frames)

    def run() -> None:
        config = config_module.from_args(args)
        name = config.corpus.name
        try:
            module = importlib.import_module(f"splits.{name}")
        except ModuleNotFoundError:
            module = None
        if not hasattr(module, "read_corpus"):
            raise DataError(f"--corpus.name {name}: features are imported for a corpus that splits/ reads "
                            "(MSVD, MSR-VTT); the demo corpus makes its own")
        corpus = module.read_corpus(config, args.annotations)
        output = args.output or corpus_paths(config.corpus.data_root, name).feature_file(name, args.name)
        count = convert(args.source, output, args.name, sampling_text,
                        [video["id"] for videos in corpus.videos.values() for video in videos],
                        corpus.feature_key or (lambda names, vid: vid if vid in names else None),
                        args.allow_pickle, args.key, args.feature, args.allow_missing)
        print(f"{count} videos -> {output} ({args.name}, {sampling_text}); next: python -m "
              f"splits.{name} --features.backbones {args.name}")
    return exit_status(run)


if __name__ == "__main__":
    sys.exit(main())
