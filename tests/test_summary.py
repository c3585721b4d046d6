"""One command trains a config over seeds, and the results table gives, per configuration, n runs
and the mean ± std of their test scores: the same numbers as a hand computation."""
import csv
import json
import os
import statistics

import pytest

import train as train_module
from evaluation import summary
from tests.small_demo import build_small_demo, cli_args, single_thread, small_config

SMALL = {"model.hidden_size": 16, "model.embedding_size": 8, "model.attention_size": 8,
         "loader.batch_size": 20, "loader.eval_batch_size": 16, "eval.beam_size": 2, "eval.max_len": 8,
         "eval.min_len": 4, "train.lr": 1e-2, "train.device": "cpu", "train.epochs": 1, "eval.metrics": [],
         "train.select_metric": "CIDEr-D"}
SEEDS = (1, 2, 3)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """runs/ with the config trained over three seeds by train.py --seeds, and another lr once."""
    data_root = build_small_demo(tmp_path_factory, (20, 4, 6))
    run_root = tmp_path_factory.mktemp("runs")
    config = small_config(SMALL, data_root, run_root)
    with single_thread():
        assert train_module.main(cli_args(config) + ["--seeds", ",".join(map(str, SEEDS))]) == 0
        train_module.train(small_config(SMALL, data_root, run_root, **{"train.lr": 5e-3}))
    return run_root


def seed_scores(run_root) -> list:
    found = []
    for name in sorted(os.listdir(run_root)):
        path = os.path.join(run_root, name, "test_scores.json")
        if os.path.isfile(path) and "_lr0.01_" in name:
            found.append(json.load(open(path)))
    return found


def test_three_seeds_give_one_row_with_their_mean_and_std(runs, capsys):
    out = runs / "table"
    assert summary.main([str(p) for p in sorted(runs.iterdir())] + ["--out", str(out)]) == 0
    scores = seed_scores(runs)
    assert len(scores) == 3
    values = [s["CIDEr-D"] for s in scores]
    assert len(set(values)) > 1                              # the seeds trained differently
    mean, std = statistics.mean(values), statistics.stdev(values)
    with open(out / "summary.csv", newline="") as handle:
        rows = {row["train.lr"]: row for row in csv.DictReader(handle) if row["category"] == "all"}
    assert sorted(rows) == ["0.005", "0.01"]                    # one row per lr, the differing setting
    assert "train.seed" not in rows["0.01"] and "model.hidden_size" not in rows["0.01"]
    assert rows["0.01"]["n"] == "3" and rows["0.01"]["seeds"] == "1 2 3" and rows["0.005"]["n"] == "1"
    assert float(rows["0.01"]["CIDEr-D_mean"]) == pytest.approx(mean, abs=1e-9)
    assert float(rows["0.01"]["CIDEr-D_std"]) == pytest.approx(std, abs=1e-9)
    assert rows["0.005"]["CIDEr-D_std"] == ""
    table = open(out / "summary.md").read()
    assert f"| 3 | 1 2 3 | {mean:.1f} ± {std:.1f} |" in open(runs / "summary.md").read()  # train.py --seeds
    assert f"| 0.01 | 3 | 1 2 3 | {mean:.1f} ± {std:.1f} |" in table
    assert table in capsys.readouterr().out


def test_per_category_rows_are_the_mean_of_each_runs_category_score(runs):
    out = runs / "by_category"
    summary.main([str(p) for p in sorted(runs.iterdir())] + ["--out", str(out)])
    scores = seed_scores(runs)
    categories = sorted(scores[0]["by_category"])
    assert categories, "the demo's test clips have kinds"
    with open(out / "summary.csv", newline="") as handle:
        rows = {(row["train.lr"], row["category"]): row for row in csv.DictReader(handle)}
    for category in categories:
        values = [s["by_category"][category]["CIDEr-D"] for s in scores]
        assert float(rows[("0.01", category)]["CIDEr-D_mean"]) == pytest.approx(statistics.mean(values))
        assert float(rows[("0.01", category)]["CIDEr-D_std"]) == pytest.approx(statistics.stdev(values))


def test_unfinished_runs_are_named_and_nothing_is_an_error(runs, tmp_path, capsys):
    (tmp_path / "empty_run").mkdir()
    assert summary.main([str(tmp_path / "empty_run"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "holds no best.pt" in err and "error: no finished run among" in err
    assert not os.path.exists(tmp_path / "summary.md")


def test_bad_seeds_are_refused(capsys):
    with pytest.raises(SystemExit):
        train_module.main(["--seeds", "1,two", "--new_run"])
    assert train_module.main(["--seeds", "1,two"]) == 2
    assert "--seeds takes whole numbers" in capsys.readouterr().err
