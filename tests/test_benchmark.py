"""bench/benchmark.py end to end on a reduced workload (--clips, --feature_size): the real stages, table
and JSON in seconds. The times mean nothing here; what is checked is what could silently break."""
import contextlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch

_environ = dict(os.environ)
from bench import benchmark  # noqa: E402
from bench.report import markdown  # noqa: E402

# bench/benchmark.py sets TQDM_DISABLE for its own process; the tests after this one keep theirs.
os.environ.clear()
os.environ.update(_environ)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The reduced workload: 12 clips of each split (about 450 training captions, 3 batches of 200),
# 64-d features; the model is still the MSVD preset's. One thread: no OpenMP stalls on a busy CPU.
REDUCED = ["--device", "cpu", "--clips", "12", "--feature_size", "64", "--threads", "1"]


def run_benchmark(argv, out):
    """(exit code, stdout, the JSON report) of benchmark.main, in this process (no second torch
    import), leaving the torch thread count as it was."""
    threads = torch.get_num_threads()
    stdout = io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout):
            code = benchmark.main(argv + ["--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    files = sorted(os.listdir(out))
    assert len(files) == 1, files                # one JSON file per run
    with open(os.path.join(out, files[0])) as handle:
        return code, stdout.getvalue(), json.load(handle)


@pytest.fixture(scope="module")
def reduced_run(tmp_path_factory):
    """Every stage but scoring (its JVM start alone takes seconds; see the scoring test), with
    the baselines, 2 extrapolated training batches, both decoding modes."""
    out = tmp_path_factory.mktemp("bench_results")
    stages = ["--stages", "train,val_loss,beam_val,beam_test", "--train_batches", "2"]
    return run_benchmark(REDUCED + stages, out)


def table_rows(stdout: str) -> list:
    return [line for line in stdout.splitlines() if line.startswith("| ")][1:]   # no header


def test_default_workload_is_the_issues():
    args = benchmark.parse_args([])
    assert args.clips is None and args.feature_size == 2048


def test_table_has_a_row_per_stage_and_no_reference_for_a_reduced_workload(reduced_run):
    code, stdout, report = reduced_run
    assert code == 0
    assert "Workload: **reduced** MSVD-shaped, 12/12/12 clips" in stdout
    rows = table_rows(stdout)
    train = report["stages"]["train"]["paths"]["fast"]
    assert train["epoch_batches"] == math.ceil(report["workload"]["train_captions"] / 200)
    labels = [f"training epoch ({train['epoch_batches']} batches of 200) **extrapolated** from 2 timed",
              f"validation loss ({report['workload']['val_captions']:,} val captions",
              "beam-5 val 12 videos (full length, 31 steps", "beam-5 val 12 videos (own stopping",
              "beam-5 test 12 videos (full length, 31 steps", "beam-5 test 12 videos (own stopping"]
    assert len(rows) == len(labels)
    for row, label in zip(rows, labels):
        assert row.startswith(f"| {label}"), (row, label)
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[1].endswith(" s") and cells[2].endswith(" s")   # this code and the baseline
        assert cells[5:] == ["-", "-"]          # no H100 reference or goal for a reduced workload
    assert "whole epoch" not in stdout           # it needs the scoring stage


def test_fast_and_plain_beam_search_give_the_same_captions(reduced_run):
    _, stdout, report = reduced_run
    for key in ("beam_val_full", "beam_val_natural", "beam_test_full", "beam_test_natural"):
        stage = report["stages"][key]
        assert stage["videos"] == 12 and stage["same_captions"] == 12, key
        assert stage["max_log_prob_difference"] < 1e-3, key
    assert stdout.count("same captions 12/12") == 4
    full = report["stages"]["beam_val_full"]["paths"]
    assert full["fast"]["mean_length"] == full["fast"]["max_length"] == 31   # every step ran


def test_training_and_validation_losses_are_finite(reduced_run):
    _, _, report = reduced_run
    for name in ("fast", "plain"):
        train = report["stages"]["train"]["paths"][name]
        assert train["extrapolated"] and len(train["batch_losses"]) == 2
        assert all(math.isfinite(loss) and loss > 0 for loss in train["batch_losses"]), name
    val = report["stages"]["val_loss"]["paths"]
    assert math.isfinite(val["fast"]["loss"]) and val["fast"]["loss"] > 0
    assert val["fast"]["loss"] == pytest.approx(val["plain"]["loss"], rel=1e-4)   # same model


def test_a_decoding_pass_that_captured_cuda_graphs_has_its_own_row(reduced_run):
    """On a GPU with --decode_graphs each decoding stage times its capturing pass apart; the
    table shows it below the stage's row, and a failed capture says so."""
    import copy
    report = copy.deepcopy(reduced_run[2])
    report["stages"]["beam_val_full"].update(capture_seconds=4.25, capture_failure=None)
    report["stages"]["beam_test_full"].update(capture_seconds=5.5, capture_failure="no luck")
    rows = table_rows(markdown(report))
    val = next(i for i, row in enumerate(rows) if row.startswith("| beam-5 val 12 videos (full length"))
    assert rows[val + 1].startswith("| the same, first pass, capturing its CUDA graphs | 4.250 s |")
    test = next(i for i, row in enumerate(rows) if row.startswith("| beam-5 test 12 videos (full length"))
    assert "**a capture failed**: no luck; eager decoding" in rows[test + 1]
    assert "5.500 s" in rows[test + 1]


def test_goals_table_judges_each_run_against_issue_10(reduced_run, tmp_path, capsys):
    """bench.goals: a row per run and measurement, the H200 reference and goal beside it; met
    or not by the number; a reduced workload's rows carry neither."""
    from bench import goals
    report = reduced_run[2]
    full = json.loads(json.dumps(report))
    full["workload"]["reduced"] = False
    full["stages"]["train"]["paths"]["fast"].update(epoch_seconds=1.5, extrapolated=False)
    full["stages"]["beam_test_full"]["paths"]["fast"]["seconds"] = 0.25
    full["stages"]["beam_test_full"]["capture_seconds"] = 1.0
    full["args"].update(decode_graphs=True, eval_batch_size=100)
    full["peak_gib"] = {"fast": 2.5, "plain": 3.0}
    full["no_baseline"] = True
    for name, content in (("a.json", report), ("b.json", full), ("c.json", {"other": 1})):
        (tmp_path / name).write_text(json.dumps(content))
    (tmp_path / "d.json").write_text('{"stages": {"tr')      # a run stopped while writing
    assert goals.main([str(tmp_path)]) == 0
    said = capsys.readouterr()
    assert "d.json left out" in said.err
    rows = table_rows(said.out)
    assert "| training epoch (extrapolated) | beside the baseline, **reduced workload** |" in rows[0]
    assert ("| training epoch | decoding as CUDA graphs | 1.50 s | 43.2 s | 28.8x | <= 1.7 s | yes |"
            in rows)
    assert ("| beam-5, 670 test videos, all 31 steps (batches of 100); first pass, capturing: 1.00 s "
            "| decoding as CUDA graphs | 0.25 s | 58.1 s | 232.4x | <= 0.1 s | no |") in rows
    assert "| peak GPU memory | decoding as CUDA graphs | 2.50 GiB | 2.99 GiB | - | <= 2 GiB | no |" in rows
    assert goals.main([str(tmp_path / "empty")]) == 2


def test_json_has_the_table_and_no_captions(reduced_run):
    _, stdout, report = reduced_run
    assert report["table"] in stdout
    assert report["workload"]["reduced"] is True and report["args"]["clips"] == 12
    assert all("captions" not in stage for stage in report["stages"].values())
    assert report["complete"] is True


def test_a_run_stopped_midway_leaves_the_stages_it_measured(tmp_path, monkeypatch, capsys):
    """The JSON is rewritten after every stage, so a benchmark killed at gpu_check.sh's time
    limit still hands back what it measured, marked incomplete (and so in bench.goals)."""
    def killed(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(benchmark, "stage_decode", killed)
    argv = REDUCED + ["--stages", "train,val_loss,beam_test", "--train_batches", "1", "--no_baseline"]
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(argv, tmp_path)
    files = os.listdir(tmp_path)
    assert len(files) == 1 and files[0].endswith(".json"), files    # no partial file left
    with open(tmp_path / files[0]) as handle:
        report = json.load(handle)
    assert report["complete"] is False and set(report["stages"]) == {"train", "val_loss"}
    assert "| validation loss" in report["table"] and "**Incomplete**" in report["table"]
    from bench import goals
    assert goals.main([str(tmp_path)]) == 0
    assert "**stopped before its end**" in capsys.readouterr().out


def test_the_json_leaves_out_the_captions_but_the_report_keeps_them(tmp_path):
    """The scoring stage scores the captions of the decoding stage, after that stage's JSON."""
    from bench.report import write_json
    report = {"stages": {"beam_val_full": {"captions": {"fast": [("a man", -1.0, 2)]}, "videos": 1}}}
    write_json(report, "the table", str(tmp_path / "run.json"))
    assert report["stages"]["beam_val_full"]["captions"]["fast"] == [("a man", -1.0, 2)]
    written = json.loads((tmp_path / "run.json").read_text())
    assert written["stages"] == {"beam_val_full": {"videos": 1}} and written["table"] == "the table"
    assert os.listdir(tmp_path) == ["run.json"]


def test_the_baseline_runs_as_often_as_asked_taking_turns_with_this_code():
    from argparse import Namespace
    from bench.timing import interleaved_runs
    calls = []
    runs = interleaved_runs({"fast": "f", "plain": "p"}, lambda fn: calls.append(fn) or len(calls),
                            Namespace(repeats=3, baseline_repeats=1))
    assert calls == ["f", "p", "f", "f"] and runs == {"fast": [1, 3, 4], "plain": [2]}
    calls.clear()
    interleaved_runs({"fast": "f", "plain": "p"}, calls.append, Namespace(repeats=1, baseline_repeats=2))
    assert calls == ["f", "p", "p"]
    calls.clear()
    interleaved_runs({"fast": "f"}, calls.append, Namespace(repeats=2, baseline_repeats=5))
    assert calls == ["f", "f"]


def test_whole_epoch_row_sums_the_stages(reduced_run):
    _, _, report = reduced_run
    report = json.loads(json.dumps(report))
    report["stages"]["scoring"] = {"videos": 12, "paths": {
        "fast": {"seconds": 1.0, "scorer_start_seconds": 5.0}, "plain": {"seconds": 6.0}}}
    table = markdown(report)
    s = report["stages"]
    fast = (s["train"]["paths"]["fast"]["epoch_seconds"] + s["val_loss"]["paths"]["fast"]["seconds"]
            + s["beam_val_full"]["paths"]["fast"]["seconds"] + 1.0)
    assert report["epoch_seconds"]["fast"] == pytest.approx(fast)
    assert report["epoch_seconds"]["plain"] > 6.0
    assert table_rows(table)[-1].startswith("| whole epoch of train.py")


def test_scoring_stage_scores_the_val_captions_or_says_why_not(tmp_path):
    # Alone, scoring first captions the val split itself (no beam_val stage ran).
    code, stdout, report = run_benchmark(REDUCED + ["--stages", "scoring", "--no_baseline"], tmp_path)
    assert code == 0
    scoring = report["stages"]["scoring"]
    if "skipped" in scoring:                     # no Java here: the table says so
        assert "Scoring skipped: no COCO scoring" in stdout
    else:
        assert scoring["videos"] == 12 and math.isfinite(scoring["paths"]["fast"]["CIDEr"])
        assert "COCO scoring of 12 val captions" in table_rows(stdout)[0]


@pytest.mark.parametrize("argv", [["--clips", "0"], ["--feature_size", "0"], ["--stages", "nope"],
                                  ["--train_batches", "0"], ["--decode_graphs"], ["--repeats", "-1"],
                                  ["--baseline_repeats", "0"]])
def test_bad_options_are_refused_before_any_work(argv, tmp_path, capsys):
    assert benchmark.main(["--device", "cpu", "--out", str(tmp_path / "out")] + argv) == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


GPU_CHECK = os.path.join("bench", "gpu_check.sh")
needs_bash = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                                reason="bench/gpu_check.sh needs bash and coreutils' timeout")


def run_gpu_check(tmp_path, *args, **env):
    """(exit code, log, {step: its summary line's words after the name}) of the reduced check."""
    env = dict(os.environ, OUT=str(tmp_path), PYTHON=sys.executable, **env)
    result = subprocess.run(["bash", GPU_CHECK, *REDUCED, *args], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    log = (tmp_path / "gpu_check.log").read_text()
    summary = log[log.index("== summary"):].splitlines()[1:]
    steps = {line.split()[0]: line.split()[1:] for line in summary if not line.startswith("==")}
    return result.returncode, log, steps



@needs_bash
def test_gpu_check_script_runs_every_step_it_lists(tmp_path):
    """bench/gpu_check.sh, the one command a session with a GPU runs, in its reduced form on the
    CPU: the MSVD-shaped corpus, train.py, the resume after SIGKILL, the checkpoints across
    devices, SCST chosen by the in-process CIDEr-D, the benchmark runs (on a CPU, the TF32 run is
    left out) and the device tests; each step ends well, the summary lists it, and each benchmark
    run writes its JSON."""
    code, log, summary = run_gpu_check(tmp_path, "--train_batches", "1", "--stages", "train")
    assert code == 0, log[-3000:]
    steps = {name: words[1] for name, words in summary.items()}
    expected = {"corpus", "train", "resume", "device_to_cpu", "device_again", "device_graphs",
                "same_captions", "graphs_same_captions",
                "cpu_train", "cpu_to_device", "cpu_checkpoint_on_device", "device_train_small",
                "device_to_cpu_resume", "scst", "benchmark", "tests", "fast_float32", "fast_bf16",
                "profile", "goals"}
    assert expected <= set(steps) <= expected | {"scorer_missing"}, steps
    assert set(steps.values()) == {"0"}, summary
    assert log.count("== exit 0") == len(steps)
    assert "OK: resuming" in log and "12/12 val captions the same on the CPU" in log
    # the small corpus's runs and the device tests run in the background beside the full corpus's
    # runs; their output comes in one piece each, once they end
    order = ["== [corpus]", "== [train]", "== [resume]", "== [small_corpus] ran in the background",
             "== [cpu_train]", "== [scst]", "== [tests] ran in the background", "== [tests] env",
             f"== [profile] {sys.executable}", "== [fast_float32]", "== [goals]"]
    assert [log.index(line) for line in order] == sorted(log.index(line) for line in order)
    assert all(log.count(line) == 1 for line in order)
    assert "12/12 val captions the same eagerly and as CUDA graphs" in log
    assert "## training batch: " in log and "top-level aten operators dispatched (views included)" in log
    assert "== [profile] its numbers:\n## training batch: " in log     # the digest at the end
    assert "self-critical training from" in log and "val CIDEr-D" in log
    assert "| training epoch (extrapolated) | beside the baseline, **reduced workload** |" in log
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json"] * 3 + [".log"]
    script = open(os.path.join(REPO_ROOT, GPU_CHECK)).read()
    # the two halves that STEPS may name hold every step, each once
    halves = {name: set() for name in ("speed", "paths")}
    for name, value in re.findall(r"^(speed|paths)_steps\+?=(\S+)$", script, re.M):
        halves[name] |= set(value.strip(",").split(","))
    named = set(re.findall(r"^ *(?:step|bench) ([a-z_0-9]+) ", script, re.M))
    assert halves["speed"] | halves["paths"] == named and not halves["speed"] & halves["paths"]
    # on a GPU the script runs the test files that use the device, never this one (which would
    # run the script again)
    uses_device = re.search(r"uses_device='([^']+)'", script).group(1)
    device_tests = subprocess.run(["bash", "-c", 'grep -lE "$0" tests/test_*.py', uses_device],
                                  cwd=REPO_ROOT, capture_output=True, text=True).stdout.split()
    assert "tests/test_devices.py" in device_tests and "tests/test_cuda_graphs.py" in device_tests
    assert not any(name.endswith("test_benchmark.py") for name in device_tests)


def test_gpu_check_steps_come_after_the_steps_they_need():
    """STEPS=X also runs what X needs (a run starts from nothing), and those come first."""
    script = open(os.path.join(REPO_ROOT, GPU_CHECK)).read()
    order = {}
    for name in re.findall(r"^ *(?:step|bench) ([a-z_0-9]+) ", script, re.M):
        order.setdefault(name, len(order))
    table = re.search(r"declare -A needs=\((.*?)\n\)", script, re.S).group(1)
    needs = dict(re.findall(r"\[(\w+)\]=(\S+)", table))
    assert len(needs) >= 15
    for name, what in needs.items():
        for needed in what.replace("$small_corpus", "corpus_small").split(","):
            assert order[needed] < order[name], (name, needed)


@needs_bash
def test_gpu_check_runs_a_named_step_with_what_it_needs(tmp_path):
    code, log, steps = run_gpu_check(tmp_path, STEPS="graphs_same_captions", BUDGET="0")
    assert code == 0, log[-3000:]
    assert list(steps) == ["corpus", "train", "device_again", "device_graphs", "graphs_same_captions"]
    assert all(words[:2] == ["exit", "0"] for words in steps.values()), steps
    assert "12/12 val captions the same eagerly and as CUDA graphs" in log


@needs_bash
def test_gpu_check_skips_what_its_budget_leaves_no_time_for_and_says_how_to_run_it(tmp_path):
    code, log, steps = run_gpu_check(tmp_path, STEPS="same_captions", BUDGET="1")
    assert code == 1
    assert list(steps) == ["corpus", "train", "device_to_cpu", "device_again", "same_captions"]
    assert steps["corpus"][:2] == ["skipped", "(budget:"], steps
    # what needs a skipped step is skipped too (not run to fail), and named for the rerun
    assert steps["train"] == ["skipped", "(needs", "corpus)"]
    assert steps["same_captions"] == ["skipped", "(needs", "device_to_cpu)"]
    assert "== [train] skipped: needs corpus" in log and "val captions the same" not in log
    assert ("== the rest: STEPS=corpus,train,device_to_cpu,device_again,same_captions "
            "bash bench/gpu_check.sh --device cpu --clips 12 --feature_size 64 --threads 1") in log


@needs_bash
def test_gpu_check_ends_with_what_failed_for_a_reader_of_its_last_lines(tmp_path):
    """Run for a session without a GPU, only the end of the output may come back: a digest with
    each failed step's last lines (its traceback) comes before the goals table and the summary."""
    script = open(os.path.join(REPO_ROOT, GPU_CHECK)).read()
    planted = 'step device_again 90 "$python" -c "import sys; sys.exit(\'Traceback: planted\')"'
    assert script.count("step device_again 90 ") == 1
    copy = tmp_path / "gpu_check.sh"
    copy.write_text(script.replace("step device_again 90 ", planted + " ", 1))
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), PYTHON=sys.executable, STEPS="device_again")
    result = subprocess.run(["bash", str(copy), *REDUCED], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    tail = result.stdout[-2000:]
    digest = tail.index("== digest: where the time goes, and what failed")
    assert tail.index("== [device_again] failed; its last lines:\nTraceback: planted") > digest
    assert tail.index("== summary") > digest
    assert re.search(r"^device_again +exit +1 ", tail, re.M)


@needs_bash
def test_gpu_check_names_a_background_step_the_budget_left_out_for_the_rest(tmp_path):
    code, log, steps = run_gpu_check(tmp_path, STEPS="tests", BUDGET="1")
    assert code == 1 and list(steps) == ["tests"] and steps["tests"][:2] == ["skipped", "(budget:"]
    assert "== the rest: STEPS=tests bash bench/gpu_check.sh" in log


@needs_bash
def test_gpu_check_names_the_steps_this_form_has_not(tmp_path):
    code, log, steps = run_gpu_check(tmp_path, STEPS="fast_tf32,corpus_small")
    absent = "not in this form (device cpu, reduced)".split()
    assert code == 0 and steps == {"fast_tf32": absent, "corpus_small": absent}


@needs_bash
@pytest.mark.parametrize("steps, said", [("trian", "STEPS names 'trian', which is not a step"),
                                         (",", "STEPS=, names no step")])
def test_gpu_check_refuses_steps_it_does_not_have(tmp_path, steps, said):
    env = dict(os.environ, OUT=str(tmp_path / "out"), PYTHON=sys.executable, STEPS=steps)
    result = subprocess.run(["bash", GPU_CHECK, *REDUCED], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and said in result.stderr
    assert not (tmp_path / "out").exists()
