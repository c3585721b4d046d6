"""The repository speaks to its users: no text in it talks about how it was made.

Every text file that git tracks or would track (data/ aside) is scanned for words a user has no
use for: references to issue numbers, to the machines lent for building it and the tools and time
limits of that lending, to the people or programs that wrote it, and to a commit's history where
the code should say what it is.
"""
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THIS_FILE = os.path.relpath(os.path.abspath(__file__), ROOT)
SKIPPED_FOLDERS = ("data/", ".git/", ".venv/", "runs/", "bench_results/")

# (pattern, what it catches); case-insensitive, matched line by line.
BUILD_TALK = [
    (r"\bissues? ?#? ?\d+", "an issue number"),
    (r"(?:^|[\s(\[])#\d+\b", "an issue or pull-request number"),
    (r"\b(?:pull request|PR) ?#?\d+", "a pull-request number"),
    (r"\b(?:lent|lend|lending|borrowed|borrowing|borrow)\b", "borrowed machines"),
    (r"\bdevice (?:tool|call|budget|lease|machine)s?\b", "the tool that lends a GPU"),
    (r"(?<!tensorboard )(?<!scope=\")(?<!scope=')\bsessions?\b", "the sessions that built the repository"),
    (r"\b(?:time|device|gpu|session|lease)(?:'s)? budget\b|\bbudget_left|\bBUDGET=", "a lending budget"),
    (r"\bgpu_check\b|\bgpu_wheels\b|\bresume_check\b|\bop_count\b|bench[./]goals\b", "a removed tool"),
    (r"\bthe lead\b|\bengineers?\b|\bworktree\b|\bworkplace\b|\bcoordination note", "how the work was shared"),
    (r"\b(?:claude|chatgpt|llm|ai assistant|language model)\b", "who wrote the code"),
    (r"\bcommitted (?:in|at) [0-9a-f]{7,40}\b|\b(?:before|after) the changes of\b", "the history of a change"),
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
        if path == THIS_FILE or path.replace(os.sep, "/").startswith(SKIPPED_FOLDERS):
            continue
        text = text_of(path)
        if text is not None:
            found += [f"{path}:{number}: {what}: {line[:120]}" for number, what, line in build_talk(text)]
    assert not found, "reword these for a user:\n" + "\n".join(found)


@pytest.mark.parametrize("line", [
    "as measured for issue 4", "issue #10's goals", "see #12 for the history", "fixed in PR 7",
    "no GPU was lent to it", "the borrowed H200", "one 10-minute call of the device tool",
    "what the session's budget leaves", "bash bench/gpu_check.sh", "the lead merges it",
    "as committed in d527d58", "before the changes of 2026-12-01", "written by Claude"])
def test_the_scan_catches_build_talk(line):
    assert build_talk(line)


@pytest.mark.parametrize("line", [
    "the issue of frame order", "a TensorBoard session", "colour #1f77b4", "## 3. Results",
    "every variant trains with the same budget of epochs", "MSVD (Chen & Dolan 2011)",
    "hobincar/SA-LSTM @ 646bcd8", "the ablation's seeds 1234, 1235, 1236", "the excellent features",
    "@pytest.fixture(scope=\"session\")"])
def test_the_scan_lets_a_users_words_through(line):
    assert not build_talk(line)
