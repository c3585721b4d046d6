"""Resume after a kill, as a command: train.py killed with SIGKILL once epoch 1's last.pt exists,
then started again, must say "resuming ... after epoch 1" and finish.

    python -m bench.resume_check RUN_DIR -- <train.py options, with --train.epochs 2 or more>

RUN_DIR is the run folder those options give (fix it with --train.run_root and
--train.run_name). Exit status 0 when the second start resumed and finished, 1 otherwise, with
what went wrong. bench/gpu_check.sh runs it on CUDA; tests/test_training.py does the same on
the CPU in more detail.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def wait_for(path: str, process: subprocess.Popen, timeout_s: float) -> str:
    """'' once path exists while process runs; else why not."""
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(path):
        if process.poll() is not None:
            return f"train.py ended (status {process.returncode}) before writing {path}"
        if time.monotonic() > deadline:
            return f"no {path} after {timeout_s:.0f} s"
        time.sleep(0.05)
    return ""


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    run_dir, train_args = argv[0], argv[2:]
    command = [sys.executable, os.path.join(REPO, "train.py"), *train_args]
    last = os.path.join(run_dir, "last.pt")
    if os.path.exists(last):
        print(f"error: {last} exists already; give a fresh run folder", file=sys.stderr)
        return 2
    print("first start:", " ".join(command), flush=True)
    first = subprocess.Popen(command, cwd=REPO)
    problem = wait_for(last, first, timeout_s=600)
    if problem:
        first.kill()
        first.wait()
        print(f"FAILED: {problem}", flush=True)
        return 1
    first.send_signal(signal.SIGKILL)
    status = first.wait()
    if status != -signal.SIGKILL:     # it had ended: a resume would only reload a finished run
        print(f"FAILED: train.py ended (status {status}) before the kill could land; give it more "
              "epochs or a larger corpus, so that the kill comes mid-run", flush=True)
        return 1
    print(f"killed with SIGKILL once {last} existed (status {status})", flush=True)

    second = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    print(second.stdout, end="", flush=True)
    resumed = [line for line in second.stdout.splitlines() if line.startswith("resuming ")]
    if second.returncode != 0 or not resumed or "after epoch" not in resumed[0]:
        print(f"FAILED: the second start exited with {second.returncode} and "
              f"{'said ' + repr(resumed[0]) if resumed else 'did not resume'}", flush=True)
        return 1
    print(f"OK: {resumed[0]}, then finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
