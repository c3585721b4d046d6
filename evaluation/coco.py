"""The COCO caption metrics: PTB tokenizer, BLEU-1..4, METEOR, ROUGE-L and CIDEr (no SPICE)."""
from __future__ import annotations

import contextlib
import os
import queue
import shutil
import subprocess
import tempfile
import threading

METRIC_NAMES = ("Bleu", "METEOR", "ROUGE_L", "CIDEr")
PER_VIDEO_KEY = "per_video"  # in CaptionScorer.score's result: {video_id: {metric: score x 100}}
JAVA_INSTALL_HINT = ("METEOR and the PTB tokenizer of pycocoevalcap run on Java. Install a Java runtime (8 or newer) "
                     "and put `java` on PATH, e.g. `sudo apt-get install default-jre-headless` (Debian/Ubuntu), "
                     "`conda install -c conda-forge openjdk`, or `brew install openjdk` (macOS).")


class MetricError(RuntimeError):
    pass


def _one_line(text: str) -> str:   # the tokenizer and METEOR read a sentence per line
    return " ".join(text.split())


class _MeteorProcess:
    """pycocoevalcap's METEOR jar (its own class hangs when java dies), answers read with a timeout."""

    def __init__(self, timeout_s: float = 300.0, command: list | None = None):
        from pycocoevalcap.meteor import meteor as coco_meteor
        self.command = command or ["java", "-jar", "-Xmx2G", coco_meteor.METEOR_JAR,
                                   "-", "-", "-stdio", "-l", "en", "-norm"]   # pycocoevalcap's: its numbers
        self.timeout_s, self._lock, self._failure, self._answers = timeout_s, threading.Lock(), None, queue.Queue()
        self._stderr = tempfile.TemporaryFile()
        try:
            self.process = subprocess.Popen(self.command, cwd=os.path.dirname(os.path.abspath(coco_meteor.__file__)),
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)
        except OSError as error:
            self._stderr.close()
            raise MetricError(f"could not start METEOR ({' '.join(self.command)}): {error}. "
                              f"{JAVA_INSTALL_HINT}") from error
        self._reader = threading.Thread(target=self._read_stdout, daemon=True, name="meteor-stdout")
        self._reader.start()
        self._stats("a man is walking", ["a man walks"])   # fail at start-up, not at the first validation hours later

    def _read_stdout(self) -> None:
        for raw in iter(self.process.stdout.readline, b""):
            self._answers.put(raw.decode("utf-8", errors="replace").strip())
        self._answers.put(None)  # end of stream: the process has exited

    def _fail(self, what: str):
        self._kill()    # its replies no longer match the questions
        self._stderr.seek(0)
        stderr_tail = self._stderr.read().decode("utf-8", errors="replace").strip()[-1500:]
        self._failure = (f"METEOR failed: {what} (java exit code {self.process.returncode}). "
                         f"java stderr: {stderr_tail or '<empty>'}")
        raise MetricError(self._failure)

    def _send(self, line: str) -> None:
        if self._failure is not None:
            raise MetricError(f"{self._failure} -- the METEOR process is gone; create a new CaptionScorer")
        if self.process.poll() is not None:
            self._fail("the java METEOR process is no longer running")
        try:
            self.process.stdin.write((line + "\n").encode("utf-8"))
            self.process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as error:
            self._fail(f"writing to the java METEOR process failed ({error!r})")

    def _receive(self) -> str:
        try:
            answer = self._answers.get(timeout=self.timeout_s)
        except queue.Empty:
            self._fail(f"no answer from the java METEOR process within {self.timeout_s:.0f} s")
        if answer is None:
            self._fail("the java METEOR process exited while answering")
        return answer

    def _receive_float(self) -> float:
        answer = self._receive()
        with contextlib.suppress(ValueError):
            return float(answer)
        self._fail(f"could not parse the METEOR answer {answer[:200]!r} as a score")

    def _stats(self, hypothesis: str, references: list) -> str:
        self._send(" ||| ".join(["SCORE", *(_one_line(text.replace("|||", "")) for text in [*references, hypothesis])]))
        stats = self._receive()
        with contextlib.suppress(ValueError):
            if [float(value) for value in stats.split()]:
                return stats
        self._fail(f"could not parse the METEOR statistics line {stats[:200]!r}")

    def compute_score(self, gts: dict, res: dict):
        """pycocoevalcap's Meteor.compute_score: (corpus score, per-id list)."""
        with self._lock:
            self._send("EVAL" + "".join(" ||| " + self._stats(res[video_id][0], gts[video_id]) for video_id in gts))
            per_video = [self._receive_float() for _ in gts]
            return self._receive_float(), per_video

    def _kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError, ValueError, subprocess.TimeoutExpired):
                self.process.stdin.close()  # EOF asks METEOR to finish on its own
                self.process.wait(timeout=5)
        self._kill()
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError, ValueError):
                stream.close()
        self._reader.join(timeout=5)
        self._stderr.close()
        self._failure = self._failure or "the METEOR process was closed"


class CaptionScorer(contextlib.AbstractContextManager):
    """The COCO metrics x 100; one per run, as METEOR's JVM loads slowly."""

    def __init__(self, metrics=METRIC_NAMES, meteor_timeout_s: float = 300.0):
        unknown = [name for name in metrics if name not in METRIC_NAMES]
        if unknown or not metrics:
            raise MetricError(f"unknown metrics {unknown} in {list(metrics)}; choose from {list(METRIC_NAMES)}")
        self.metrics = [name for name in METRIC_NAMES if name in metrics]
        java = shutil.which("java")   # the tokenizer needs Java even without METEOR
        if java is None:
            raise MetricError(f"`java` was not found on PATH. {JAVA_INSTALL_HINT}")
        try:
            result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise MetricError(f"`{java} -version` failed ({error}). {JAVA_INSTALL_HINT}") from error
        if result.returncode != 0:   # java prints its version, and its errors, on stderr
            raise MetricError(f"`{java} -version` exited with code {result.returncode}: "
                              f"{(result.stderr or result.stdout).strip()[-500:]}. {JAVA_INSTALL_HINT}")
        try:
            from pycocoevalcap.bleu.bleu import Bleu
            from pycocoevalcap.cider.cider import Cider
            from pycocoevalcap.rouge.rouge import Rouge
            from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
        except ImportError as error:
            raise MetricError(f"the COCO caption metrics need pycocoevalcap ({error}): "
                              f"`pip install -r requirements.txt` installs it") from error
        self._tokenizer = PTBTokenizer()
        self._meteor = _MeteorProcess(meteor_timeout_s) if "METEOR" in self.metrics else None
        self._scorers = {"Bleu": Bleu(4), "METEOR": self._meteor, "ROUGE_L": Rouge(), "CIDEr": Cider()}

    @property
    def meteor_pid(self):
        return self._meteor.process.pid if self._meteor is not None else None

    def score(self, references: dict, hypotheses: dict):
        """{metric: corpus score, PER_VIDEO_KEY: {video_id: {metric: score}}} of one caption per video."""
        if not references:
            raise MetricError("no videos to score: the references are empty")
        missing, extra = [v for v in references if v not in hypotheses], [v for v in hypotheses if v not in references]
        if missing or extra:
            raise MetricError(f"hypotheses must cover exactly the videos of the references: "
                              f"{len(missing)} video(s) without a hypothesis (e.g. {missing[:5]}), "
                              f"{len(extra)} hypothesis(es) without references (e.g. {extra[:5]})")
        for video_id, captions in references.items():
            if isinstance(captions, str) or not captions or not all(isinstance(c, str) for c in captions):
                raise MetricError(f"references of video {video_id!r} must be a non-empty list of strings, "
                                  f"got {captions!r:.200}")
        for video_id, caption in hypotheses.items():
            if not isinstance(caption, str):
                raise MetricError(f"the hypothesis of video {video_id!r} must be one string, got {caption!r:.200}")
        # one tokenizer call (one JVM start) for both sides
        sides = {"ref": references, "hyp": {video_id: [caption] for video_id, caption in hypotheses.items()}}
        captions = {(side, video_id): [{"caption": _one_line(c)} for c in texts]
                    for side, table in sides.items() for video_id, texts in table.items()}
        try:
            tokens = self._tokenizer.tokenize(captions)
        except OSError as error:  # java gone, or the package folder (temp file) not writable
            raise MetricError(f"the PTB tokenizer (java) failed: {error!r}. {JAVA_INSTALL_HINT}") from error
        # a java failure shows as missing entries, which the scorers would report as bare asserts
        for key, entries in captions.items():
            if len(tokens.get(key, ())) != len(entries):
                raise MetricError(f"the PTB tokenizer (java) returned {len(tokens.get(key, ()))} captions for "
                                  f"{key[0]} of video {key[1]!r} instead of {len(entries)}; see the java output above")
        gts, res = ({video_id: tokens[(side, video_id)] for video_id in references} for side in sides)
        corpus, per_video = {}, {video_id: {} for video_id in references}
        for name in self.metrics:
            if name == "Bleu":
                values, video_values = self._scorers["Bleu"].compute_score(gts, res, verbose=0)
                results = [(f"Bleu_{n + 1}", values[n], video_values[n]) for n in range(4)]
            else:
                results = [(name, *self._scorers[name].compute_score(gts, res))]
            for metric, corpus_value, video_values in results:
                corpus[metric] = 100.0 * float(corpus_value)
                for video_id, value in zip(references, video_values):
                    per_video[video_id][metric] = 100.0 * float(value)
        corpus[PER_VIDEO_KEY] = per_video
        return corpus

    def close(self) -> None:
        if self._meteor is not None:
            self._meteor.close()

    def __exit__(self, *exc_info):
        self.close()

    def __del__(self):
        with contextlib.suppress(Exception):  # at interpreter shutdown modules may be half torn down
            self.close()

