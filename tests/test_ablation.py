"""The ablation's measures and its table, without training (the training is train.py's, tested there)."""
import pytest

import ablation


def test_binding_reads_colour_shape_pairs_and_counts_only_two_object_clips():
    clips = {
        "a": {"spec": {"kind": "two_objects", "objects": [{"colour": "red", "shape": "square"},
                                                          {"colour": "blue", "shape": "circle"}]}},
        "b": {"spec": {"kind": "two_objects", "objects": [{"colour": "green", "shape": "triangle"},
                                                          {"colour": "white", "shape": "square"}]}},
        "c": {"spec": {"kind": "one_event", "objects": [{"colour": "red", "shape": "square"}]}},
    }
    predictions = [
        {"video_id": "a", "caption": "a blue ball moves and a red box turns"},      # right, other words
        {"video_id": "b", "caption": "a green square moves and a white triangle"},  # swapped shapes
        {"video_id": "c", "caption": "nothing that matches"},                        # not counted
    ]
    assert ablation.colour_shape_pairs("a red box and a blue ball") == {("red", "square"), ("blue", "circle")}
    assert ablation.binding_accuracy(predictions, clips) == pytest.approx(50.0)


def test_table_gives_one_line_per_variant_with_mean_and_range_over_seeds():
    def row(variant, seed, cider, binding):
        return {"variant": variant, "seed": seed, "CIDEr": cider, "binding": binding, "Bleu_4": 1.0,
                "METEOR": 2.0, "ROUGE_L": 3.0, "CIDEr_one_event": 4.0, "CIDEr_two_objects": 5.0,
                "CIDEr_two_actions": 6.0}
    text = ablation.table([row("full", 1, 300.0, 70.0), row("full", 2, 320.0, 80.0),
                           row("mean_pooling", 1, 310.0, 50.0)])
    lines = text.splitlines()
    assert len(lines) == 4
    assert lines[2].startswith("| full | 1, 2 | 1.0 (1.0–1.0) | ") and "310.0 (300.0–320.0)" in lines[2]
    assert "75.0 (70.0–80.0)" in lines[2]
    assert lines[3].startswith("| mean_pooling | 1 | ") and lines[3].endswith("| 310.0 | 4.0 | 5.0 | 6.0 | 50.0 |")


@pytest.mark.parametrize("argv", [["--variants", "full,no_such_thing"], ["--seeds", "1,two"],
                                  ["--corpus.name", "MSVD"]])
def test_bad_ablation_arguments_stop_before_any_training(argv):
    with pytest.raises(SystemExit) as stopped:
        ablation.main(argv)
    assert stopped.value.code == 2
