"""The repository speaks to its users: no text in it talks about how it was made.

Every text file that git tracks or would track (data/ aside: its captions are the corpora's own)
is scanned for words a user has no use for: tracker numbers, the machines, tools and time limits
of the work that made it, who or what wrote it, and a commit's history where the code should say
what it is. The patterns and examples below are spelt so that this file passes its own scan.
"""
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIPPED_FOLDERS = ("data/", ".git/", ".venv/", "runs/", "bench_results/")

# (pattern, what it catches); case-insensitive, matched line by line.
BUILD_TALK = [
    (r"\b[i]ssues? ?#? ?\d+", "a tracker number"),
    (r"(?:^|[\s(\[])#\d+\b", "a tracker or pull-request number"),
    (r"\b(?:pull request|PR) ?#?\d+", "a pull-request number"),
    (r"\b(?:[l]ent|[l]end|[l]ending|[b]orrowed|[b]orrowing|[b]orrow)\b", "machines had for the work"),
    (r"\b[d]evice (?:tool|call|[b]udget|lease|machine)s?\b", "the tool that gave a GPU"),
    (r"(?<!tensorboard )(?<!scope=\")(?<!scope=')\b[s]essions?\b", "the sittings that made the code"),
    (r"\b(?:time|device|gpu|[s]ession|lease)(?:'s)? [b]udget\b|\b[b]udget_left|\b[B]UDGET=", "a time limit"),
    (r"\b[g]pu_check\b|\b[g]pu_wheels\b|\b[r]esume_check\b|\b[o]p_count\b|bench[./][g]oals\b", "a removed tool"),
    (r"\b[t]he lead\b|\b[e]ngineers?\b|\b[w]orktree\b|\b[w]orkplace\b|\b[c]oordination note",
     "how the work was shared"),
    (r"\b(?:[c]laude|[c]hatgpt|[l]lm|[a]i assistant|[l]anguage model)\b", "who wrote the code"),
    (r"\b[c]ommitted (?:in|at) [0-9a-f]{7,40}\b|\b(?:before|after) [t]he changes of\b", "the history of a change"),
]
COMPILED = [(re.compile(pattern, re.IGNORECASE), what) for pattern, what in BUILD_TALK]


def repository_files() -> list:
    """Tracked and untracked-but-not-ignored files, or every file when git is not there."""
    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                                cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        listed = [os.path.relpath(os.path.join(folder, name), ROOT)
                  for folder, _, names in os.walk(ROOT) for name in names]
    return sorted(path for path in listed if path and os.path.isfile(os.path.join(ROOT, path)))


def text_of(path: str):
    """The file's text, or None for a binary file (one with a NUL byte or not UTF-8)."""
    with open(os.path.join(ROOT, path), "rb") as handle:
        raw = handle.read()
    if b"\0" in raw:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def build_talk(text: str) -> list:
    """(line number, what, the line) for each line that talks about how the code was made."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for pattern, what in COMPILED:
            if pattern.search(line):
                found.append((number, what, line.strip()))
    return found


def test_no_file_talks_about_how_the_repository_was_made():
    found = []
    for path in repository_files():
        if path.replace(os.sep, "/").startswith(SKIPPED_FOLDERS):
            continue
        text = text_of(path)
        if text is not None:
            found += [f"{path}:{number}: {what}: {line[:120]}" for number, what, line in build_talk(text)]
    assert not found, "reword these for a user:\n" + "\n".join(found)


# "·" splits each example's words so that this file passes its own scan; the test joins them.
@pytest.mark.parametrize("line", [
    "as measured for is·sue 4", "is·sue #·10's goals", "see #·12 for the history", "fixed in P·R 7",
    "no GPU was le·nt to it", "the bor·rowed H200", "one 10-minute call of the de·vice tool",
    "what the ses·sion's bud·get leaves", "bash bench/gpu·_check.sh", "the le·ad merges it",
    "as com·mitted in d527d58", "before the chan·ges of 2026-12-01", "written by Cla·ude"])
def test_the_scan_catches_build_talk(line):
    assert build_talk(line.replace("·", ""))


@pytest.mark.parametrize("line", [
    "the is·sue of frame order", "a TensorBoard ses·sion", "colour #1f77b4", "## 3. Results",
    "every variant trains with the same bud·get of epochs", "MSVD (Chen & Dolan 2011)",
    "hobincar/SA-LSTM @ 646bcd8", "the ablation's seeds 1234, 1235, 1236", "the excellent features",
    "@pytest.fixture(scope=\"ses·sion\")"])
def test_the_scan_lets_a_users_words_through(line):
    assert not build_talk(line.replace("·", ""))
