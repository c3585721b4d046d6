"""The ablation's measures and its table, without training (the training is train.py's, tested there)."""
import pytest

from bench import ablation


def test_binding_tells_naming_both_objects_from_pairing_them_right():
    objects = lambda *pairs: [{"colour": c, "shape": s} for c, s in pairs]
    clips = {
        "a": {"spec": {"kind": "two_objects", "objects": objects(("red", "square"), ("blue", "circle"))}},
        "b": {"spec": {"kind": "two_objects",
                       "objects": objects(("green", "triangle"), ("white", "square"))}},
        "c": {"spec": {"kind": "two_objects", "objects": objects(("red", "circle"), ("yellow", "square"))}},
        "d": {"spec": {"kind": "two_objects", "objects": objects(("blue", "square"), ("blue", "circle"))}},
        "e": {"spec": {"kind": "one_event", "objects": objects(("red", "square"))}},
    }
    predictions = [
        {"video_id": "a", "caption": "a blue ball moves and a red box turns"},      # named, bound
        {"video_id": "b", "caption": "a green square moves and a white triangle"},  # named, swapped
        {"video_id": "c", "caption": "the red circle is shrinking"},                 # one object only
        {"video_id": "d", "caption": "a blue box grows and a blue ball shrinks"},   # same colour twice
        {"video_id": "e", "caption": "nothing that matches"},                        # not counted
    ]
    assert ablation.colour_shape_pairs("a red box and a blue ball") == {("red", "square"), ("blue", "circle")}
    assert ablation.binding(predictions, clips) == pytest.approx({"named": 75.0, "bound": 200 / 3,
                                                                  "right": 50.0})


def test_table_gives_one_line_per_variant_with_mean_and_range_over_seeds():
    def row(variant, seed, cider, right):
        return {"variant": variant, "seed": seed, "CIDEr": cider, "right": right, "Bleu_4": 1.0,
                "METEOR": 2.0, "ROUGE_L": 3.0, "CIDEr_one_event": 4.0, "CIDEr_two_objects": 5.0,
                "CIDEr_two_actions": 6.0, "named": 7.0, "bound": 8.0}
    text = ablation.table([row("soft", 1, 300.0, 70.0), row("soft", 2, 320.0, 80.0),
                           row("mean", 1, 310.0, 50.0)])
    lines = text.splitlines()
    assert len(lines) == 4 and lines[1].count("---") == 12
    assert lines[2].startswith("| soft | 1, 2 | 1.0 (1.0–1.0) | ") and "310.0 (300.0–320.0)" in lines[2]
    assert lines[2].endswith("| 75.0 (70.0–80.0) |")
    assert lines[3].startswith("| mean | 1 | ")
    assert lines[3].endswith("| 310.0 | 4.0 | 5.0 | 6.0 | 7.0 | 8.0 | 50.0 |")


@pytest.mark.parametrize("argv", [["--variants", "full,no_such_thing"], ["--seeds", "1,two"],
                                  ["--corpus.name", "MSVD"]])
def test_bad_ablation_arguments_stop_before_any_training(argv):
    with pytest.raises(SystemExit) as stopped:
        ablation.main(argv)
    assert stopped.value.code == 2
