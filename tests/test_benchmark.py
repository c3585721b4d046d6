"""bench/benchmark.py end to end on a reduced workload (--clips, --feature_size): the real stages, table
and JSON in seconds. The times mean nothing here; what is checked is what could silently break."""
import contextlib
import io
import json
import math
import os

import pytest
import torch

from tests.devices import TRAIN_DEVICE

_environ = dict(os.environ)
from bench import benchmark  # noqa: E402
from bench.benchmark import markdown  # noqa: E402

# bench/benchmark.py sets TQDM_DISABLE for its own process; the tests after this one keep theirs.
os.environ.clear()
os.environ.update(_environ)

# The reduced workload: 12 clips of each split (about 450 training captions, 3 batches of 200),
# 64-d features; the model is still the MSVD preset's. One thread: no OpenMP stalls on a busy CPU.
# SALSTM_TEST_DEVICE=cuda runs it on the GPU.
DEVICE = "cpu" if TRAIN_DEVICE == "auto" else TRAIN_DEVICE
REDUCED = ["--device", DEVICE, "--clips", "12", "--feature_size", "64", "--threads", "1"]
on_cuda = pytest.mark.skipif(not DEVICE.startswith("cuda"),
                             reason="CUDA graphs and TF32 need SALSTM_TEST_DEVICE=cuda on a GPU")


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


def test_default_workload_is_msvd_shaped_with_resnet_sized_features():
    args = benchmark.parse_args([])
    assert args.clips is None and args.feature_size == 2048


def test_table_has_a_row_per_stage(reduced_run):
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
        assert len(cells) == 5
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


@pytest.mark.parametrize("options", [["--autocast", "bf16"],
                                     pytest.param(["--cuda_graphs", "--decode_graphs"], marks=on_cuda),
                                     pytest.param(["--cuda_graphs", "--decode_graphs", "--tf32"], marks=on_cuda)])
def test_this_codes_switches_run_every_stage_they_touch(options, tmp_path):
    argv = REDUCED + ["--stages", "train,beam_test", "--decode_modes", "full", "--train_batches", "1",
                      "--no_baseline"] + options
    code, stdout, report = run_benchmark(argv, tmp_path)
    assert code == 0 and report["complete"] is True
    train = report["stages"]["train"]
    assert all(math.isfinite(loss) and loss > 0 for loss in train["paths"]["fast"]["batch_losses"])
    decode = report["stages"]["beam_test_full"]
    assert decode["paths"]["fast"]["seconds"] > 0
    if "--cuda_graphs" in options:                         # captured, not fallen back to eager
        assert train["capture_failure"] is None and train["captured_shapes"] > 0
        assert decode["capture_failure"] is None
        assert "first pass, capturing its CUDA graphs" in stdout


def test_json_has_the_table_and_no_captions(reduced_run):
    _, stdout, report = reduced_run
    assert report["table"] in stdout
    assert report["workload"]["reduced"] is True and report["args"]["clips"] == 12
    assert all("captions" not in stage for stage in report["stages"].values())
    assert report["complete"] is True


def test_a_run_stopped_midway_leaves_the_stages_it_measured(tmp_path, monkeypatch):
    """The JSON is rewritten after every stage, so a benchmark stopped midway (a time limit, a
    Ctrl-C) still leaves what it measured, marked incomplete."""
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


def test_the_json_leaves_out_the_captions_but_the_report_keeps_them(tmp_path):
    """The scoring stage scores the captions of the decoding stage, after that stage's JSON."""
    from bench.benchmark import write_json
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
