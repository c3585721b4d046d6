"""Every config value is checked at start-up, before any data is read: a clear error naming the
field and what it allows, never a traceback or a run that quietly does something else."""
import pytest

import config as config_module
import train as train_module

BAD = [
    ("features.n_frames", "0", "at least 1"),
    ("eval.beam_size", "0", "at least 1"),
    ("eval.beam_size", "-3", "at least 1"),
    ("eval.max_len", "0", "at least 1"),
    ("eval.min_len", "31", "above eval.max_len"),
    ("loader.batch_size", "0", "at least 1"),
    ("loader.eval_batch_size", "0", "at least 1"),
    ("train.lr", "-1", "above 0"),
    ("train.lr", "nan", "finite"),
    ("model.dropout", "1.5", "from 0.0 to 1.0"),
    ("model.hidden_size", "0", "at least 1"),
    ("train.log_every", "0", "at least 1"),
    ("features.backbones", ",", "one feature file per backbone"),
    ("features.backbones", "A,A", "twice"),
    ("train.device", "tpu", "auto, cpu, cuda"),
    ("train.epochs", "0", "at least 1"),
    ("train.optimizer", "sgd", "one of amsgrad, adam, adadelta"),
    ("train.label_smoothing", "1", "from 0.0 to 1.0"),
    ("train.seed", "-1", "from 0 to"),
    ("eval.metrics", "BLEU", "unknown"),
    ("corpus.test_split", "val", "must differ"),
    ("train.run_name", "a/b", "folder name"),
]


@pytest.mark.parametrize("field, value, says", BAD)
def test_train_py_refuses_a_bad_value_before_reading_data(tmp_path, capsys, field, value, says):
    status = train_module.main(["--corpus.data_root", str(tmp_path / "absent"),
                                "--train.run_root", str(tmp_path / "runs"), f"--{field}", value])
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith("error: ") and field in err and says in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "absent").exists()


@pytest.mark.parametrize("field", ["train.run_root", "corpus.data_root"])
def test_a_folder_option_naming_a_file_is_refused(tmp_path, capsys, field):
    (tmp_path / "file").write_text("not a folder")
    status = train_module.main([f"--{field}", str(tmp_path / "file")])
    err = capsys.readouterr().err
    assert status == 2 and f"{field} " in err and "is a file, not a folder" in err


def test_every_preset_passes_and_a_suspicious_but_legal_value_is_allowed():
    for preset in config_module.PRESETS:
        config_module.check(config_module.build(preset))
    config_module.check(config_module.build("Demo", **{"features.n_frames": 1, "eval.min_len": 30}))


def test_a_config_built_in_python_is_checked_for_types():
    config = config_module.build("Demo")
    config.loader.batch_size = 2.5
    with pytest.raises(config_module.ConfigError, match="loader.batch_size expects int, got 2.5"):
        train_module.train(config)
    config = config_module.build("Demo")
    config.model.use_selector = "no"
    with pytest.raises(config_module.ConfigError, match="model.use_selector expects bool"):
        config_module.check(config)


def parsed(*argv):
    parser = config_module.argument_parser("test")
    config_module.add_arguments(parser)
    return parser, parser.parse_args(list(argv))


def test_help_lists_the_registered_attentions_and_searches():
    from models.attention import ATTENTIONS
    from models.searches import SEARCHES
    text = " ".join(parsed()[0].format_help().split())
    assert f"(registered: {', '.join(sorted(ATTENTIONS))})" in text
    assert f"(registered: {', '.join(sorted(SEARCHES))})" in text


@pytest.mark.parametrize("argv, field", [
    (["--model.attention", "general", "--model.frame_positions", "true"], "model.frame_positions"),
    (["--model.attention", "mean", "--model.attention_size", "64"], "model.attention_size"),
    (["--eval.temperature", "0.5"], "eval.temperature"),
    (["--eval.search", "greedy", "--eval.beam_size", "3"], "eval.beam_size"),
    (["--eval.search", "sample", "--eval.length_penalty", "0.7"], "eval.length_penalty"),
], ids=["frame_positions-general", "attention_size-mean", "temperature-beam", "beam_size-greedy",
        "length_penalty-sample"])
def test_an_option_the_chosen_variant_does_not_read_is_refused(argv, field):
    import models.searches  # noqa: F401  (the registries)
    with pytest.raises(config_module.ConfigError, match=f"--{field}: .* does not read it"):
        config_module.from_args(parsed(*argv)[1])


def test_a_preset_value_the_chosen_variant_does_not_read_is_a_note(capsys):
    import models.searches  # noqa: F401
    config = config_module.from_args(parsed("--model.attention", "general")[1])   # Demo: attention_size 128
    assert config.model.attention == "general"
    assert "note: model.attention_size 128 is not read by model.attention general" in capsys.readouterr().err
    config_module.from_args(parsed("--eval.search", "greedy", "--eval.beam_size", "5")[1])   # the default
    config_module.from_args(parsed("--model.frame_positions", "true")[1])                   # soft reads it
    assert capsys.readouterr().err == ""
