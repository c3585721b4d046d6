"""MSVD annotations: the official split, youtube_mapping.txt, and the two caption sources, each giving
{vidN: [caption, ...]}: the shipped English release of Venugopalan et al. (``sents_*_lc_nopunc.txt``,
lines ``vidN<TAB>caption``) or Microsoft's raw ``MSR Video Description Corpus.csv`` (not shipped)."""
from __future__ import annotations

import csv
import io
import re
from collections import defaultdict

from splits.corpus import lines, read_text
from utils import DataError

SPLIT_RANGES = {"train": (1, 1200), "val": (1201, 1300), "test": (1301, 1970)}
MAPPING_FILE = "youtube_mapping.txt"
RELEASE_FILES = {s: f"sents_{s}_lc_nopunc.txt" for s in ("train", "val", "test")}
CSV_COLUMNS = ("VideoID", "Start", "End", "Language", "Description")
HOW_TO_GET = ("the repository ships it in data/MSVD/annotations/ (restore it with "
              "`git checkout -- data/MSVD/annotations`), or pass --annotations DIR")


def official_split(vid: str) -> str | None:
    match = re.fullmatch(r"vid(\d+)", vid)
    return next((split for split, (first, last) in SPLIT_RANGES.items()
                 if match and first <= int(match.group(1)) <= last), None)


def split_vids(split: str) -> list:
    return [f"vid{n}" for n in range(SPLIT_RANGES[split][0], SPLIT_RANGES[split][1] + 1)]


def read_mapping(path: str) -> dict:
    """youtube_mapping.txt: clip id -> vidN, one '<YouTubeID>_<start>_<end> vidN' a line."""
    mapping, seen_vids = {}, set()
    for number, line in lines(path):
        fields = re.fullmatch(r"(\S+_\d+_\d+)\s+(\S+)", line.strip())  # YouTube ids may hold '_' and '-'
        if fields is None or official_split(fields[2]) is None:
            raise DataError(f"{path} line {number}: expected '<YouTubeID>_<start>_<end> vidN' with "
                            f"N in 1..1970, got {line!r}; restore the shipped youtube_mapping.txt")
        clip, vid = fields.groups()
        if clip in mapping or vid in seen_vids:
            raise DataError(f"{path} line {number}: {clip if clip in mapping else vid} appears twice; "
                            "restore the shipped youtube_mapping.txt")
        mapping[clip] = vid
        seen_vids.add(vid)
    return mapping


def read_release(paths: list) -> tuple:
    """The English release: ({vidN: [captions]}, notes). Empty captions are dropped and counted."""
    captions, empty = defaultdict(list), 0
    for path in paths:
        for number, line in lines(path):
            vid, tab, caption = line.partition("\t")
            if not tab or not re.fullmatch(r"vid\d+", vid):
                raise DataError(f"{path} line {number}: expected 'vidN<TAB>caption', got {line[:80]!r}; "
                                "restore the shipped file")
            if official_split(vid) is None:
                raise DataError(f"{path} line {number}: {vid} is outside the official MSVD split "
                                "(vid1..vid1970); restore the shipped file")
            caption = caption.strip()
            if caption:
                captions[vid].append(caption)
            else:
                empty += 1
    return dict(captions), [f"{empty} empty captions dropped"] if empty else []


def _frame_number(text: str) -> str:
    """'15' and '15.0' name the same clip boundary (spreadsheets like to add the '.0')."""
    try:
        return str(int(float(text))) if float(text).is_integer() else text
    except ValueError:
        return text


def read_csv(path: str, mapping: dict) -> tuple:
    """The raw corpus: English, non-empty rows of clips in the mapping -> ({vidN: [captions]}, notes)."""
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise DataError(f"{path} is not the MSVD corpus CSV: columns {missing} missing (header: {reader.fieldnames}); "
                        "expected VideoID,Start,End,WorkerID,Source,AnnotationTime,Language,Description")
    captions, unmapped, other_language, empty = defaultdict(list), [], 0, 0
    try:
        for row in reader:
            field = {key: (row[key] or "").strip() for key in CSV_COLUMNS}
            if field["Language"] != "English":
                other_language += 1
            elif not field["Description"]:
                empty += 1
            else:
                clip = "_".join([field["VideoID"], _frame_number(field["Start"]), _frame_number(field["End"])])
                if clip in mapping:
                    captions[mapping[clip]].append(field["Description"])
                else:  # the corpus describes clips that never made it into the 1,970
                    unmapped.append(clip)
    except csv.Error as error:
        raise DataError(f"{path} line {reader.line_num}: malformed CSV ({error}); "
                        "download the corpus file again") from None
    notes = [f"{other_language} non-English rows skipped", f"{empty} empty English descriptions dropped",
             f"{len(unmapped)} captions of {len(set(unmapped))} clips not in {MAPPING_FILE} skipped"]
    return dict(captions), [note for note in notes if not note.startswith("0 ")]
