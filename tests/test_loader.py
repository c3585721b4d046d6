import numpy as np
import pytest

import config as config_module
from loader.captions import build_vocabulary, caption_transforms, encode_targets, tokenize
from loader.frames import pad_frames, sample_frame_indices
from loader.vocabulary import BOS_ID, EOS_ID, UNK_ID, Vocabulary


@pytest.mark.parametrize("n_frames", [28, 29, 40, 57, 120, 1000])
def test_frames_equally_spaced_over_the_whole_clip(n_frames):
    k = 28
    indices = sample_frame_indices(n_frames, k)
    chunk = n_frames / k
    assert len(indices) == k and np.all(np.diff(indices) > 0)
    assert indices[0] < chunk                      # first chunk covered
    assert indices[-1] >= n_frames - chunk         # last chunk covered
    assert indices[-1] <= n_frames - 1
    for i, index in enumerate(indices):            # frame j spans [j, j+1): one in every chunk
        assert i * chunk < index + 1 and index < (i + 1) * chunk


def test_short_clips_keep_every_frame_and_mask_the_padding():
    indices = sample_frame_indices(5, 28)
    assert indices.tolist() == [0, 1, 2, 3, 4]
    frames, mask = pad_frames(np.ones((5, 3), np.float32), 28)
    assert frames.shape == (28, 3) and mask.sum() == 5 and mask[:5].all()
    assert not frames[5:].any()


def test_vocabulary_from_training_captions_only_with_min_count():
    loader = config_module.LoaderConfig(min_count=2)
    train = [["A dog runs.", "a dog runs"], ["a cat sits", "A CAT jumps!"]]
    vocab = build_vocabulary(train, loader)
    assert vocab.words[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert set(vocab.words[4:]) == {"a", "dog", "runs", "cat"}       # sits, jumps once only
    assert "zebra" not in vocab.index                                 # never from other splits
    targets = encode_targets([["a zebra runs"]], vocab, loader)
    assert targets.tokens[0].tolist()[:5] == [BOS_ID, vocab.index["a"], UNK_ID, vocab.index["runs"], EOS_ID]
    assert targets.lengths.tolist() == [4]


def test_vocabulary_max_size_and_round_trip():
    vocab = Vocabulary.build([["b", "a", "a", "c", "c", "c"]], max_size=2)
    assert vocab.words[4:] == ["c", "a"]
    assert Vocabulary(vocab.to_list()).index == vocab.index
    assert vocab.decode([vocab.index["c"], vocab.index["a"], EOS_ID, vocab.index["c"]]) == "c a"


def test_normalisation_and_bad_captions_are_handled_not_fatal():
    loader = config_module.LoaderConfig(max_caption_words=3)
    transforms = caption_transforms(loader)
    assert tokenize("A Café, naïve-ly!", transforms) == ["a", "cafe", "naive", "ly"]
    vocab = build_vocabulary([["a man", "   ", "…", "一个人"]], loader)
    targets = encode_targets([["a man", "   ", "…", "a man is very tall"]], vocab, loader)
    assert len(targets) == 2 and targets.n_dropped == 2            # empties dropped
    assert targets.lengths.tolist() == [3, 4]                      # truncated to 3 words + <eos>
    loader.drop_long_captions = True
    assert len(encode_targets([["a man is very tall"]], vocab, loader)) == 0


def test_unknown_config_field_is_a_clear_error():
    with pytest.raises(config_module.ConfigError, match="model.hiden_size"):
        config_module.build("Demo", **{"model.hiden_size": 3})
    with pytest.raises(config_module.ConfigError, match="expects int"):
        config_module.build("Demo", **{"model.hidden_size": "big"})


def test_a_prepared_corpus_folder_can_move(tmp_path, monkeypatch):
    import shutil

    from loader.dataset import load_split
    from splits.Demo import build_demo
    config = config_module.build("Demo", **{"corpus.data_root": str(tmp_path / "before")})
    build_demo(config, split_sizes=(4, 2, 2), show_progress=False)
    expected = load_split(config, "train").features
    shutil.move(str(tmp_path / "before"), str(tmp_path / "after"))
    monkeypatch.chdir("/")                          # links resolve from their own folder
    config.corpus.data_root = str(tmp_path / "after")
    assert np.array_equal(load_split(config, "train").features.numpy(), expected.numpy())


def test_the_prepare_command_in_errors_repeats_the_configs_backbones_and_data_root(tmp_path):
    from loader.dataset import load_split
    from utils import DataError
    config = config_module.build("MSVD", **{"features.backbones": ["InceptionV4", "C3D"],
                                            "corpus.data_root": str(tmp_path)})
    with pytest.raises(DataError, match=f"python -m splits.MSVD --features.backbones InceptionV4,C3D "
                                        f"--corpus.data_root {tmp_path}$"):
        load_split(config, "test")
    config = config_module.build("MSVD")              # the preset's own backbones: nothing to add
    config.corpus.data_root = str(tmp_path)
    with pytest.raises(DataError, match="first: python -m splits.MSVD --corpus.data_root"):
        load_split(config, "test")


def test_the_prepare_command_names_custom_splits_and_quotes_what_needs_it():
    from splits.layout import prepare_command
    config = config_module.build("MSVD", **{"corpus.data_root": "my data", "corpus.test_split": "mytest"})
    assert prepare_command(config) == ("python -m splits.MSVD --corpus.data_root 'my data' "
                                       "--corpus.test_split mytest")
    demo = config_module.build("Demo", **{"features.backbones": ["Appearance"]})
    assert prepare_command(demo) == "python -m splits.Demo --force"   # its own backbones, anew
