"""Checks that hold an attention to its own definition (models/attention.py), whichever it is:
tests/test_attentions.py runs them for every registered attention, tests/test_extending.py for the
toy one it registers."""
import torch

from models.sa_lstm import EncodedClips
from tests.reference import reference_alpha
from tests.tiny import tiny_clips, tiny_model

WIDTH = 2      # rows per clip, as beams or samples have them


def attention_inputs(overrides: dict, seed: int = 0):
    """(model, clips of 3 clips for WIDTH rows each, hidden states (3 * WIDTH, H)); clip 0 has
    two real frames of four, and garbage (not zeros) in its padded frames' features."""
    model, _ = tiny_model(seed=seed, **overrides)
    features, mask = tiny_clips(seed=seed)
    clips = model.encode(features, mask, rows_per_clip=WIDTH)
    generator = torch.Generator().manual_seed(seed + 7)
    hidden = 2 * torch.randn(3 * WIDTH, model.decoder.hidden_size, generator=generator)
    return model, with_padded_frames(model, clips, 50 * torch.randn(2, clips.frames.shape[-1],
                                                                   generator=generator)), hidden


def with_padded_frames(model, clips, padded: torch.Tensor) -> EncodedClips:
    """clips whose padded frames of clip 0 (frames 2 and 3) hold `padded`, keys made anew from them."""
    frames = clips.frames.clone()
    frames[0, 2:] = padded
    return EncodedClips(frames, model.decoder.attention.keys(frames), clips.mask, clips.state,
                        clips.rows_per_clip)


def weights(model, clips, hidden, width: int = WIDTH) -> torch.Tensor:
    """(B, width, K) as the decoder gets them: with the query from its stacked product when the
    attention offers one, else reading h_{t-1} itself."""
    _, query, _ = model.decoder.read_hidden(hidden, model.decoder.maps())
    return model.decoder.attention.weights(hidden, clips, width, query)


def check_weights_are_a_distribution_over_real_frames(overrides: dict) -> None:
    model, clips, hidden = attention_inputs(overrides)
    with torch.no_grad():
        alpha = weights(model, clips, hidden)
    real = clips.mask.unsqueeze(1).expand_as(alpha)
    assert torch.allclose(alpha.sum(-1), torch.ones(alpha.shape[:2]), atol=1e-6)
    assert bool((alpha[real] >= 0).all())
    assert float(alpha[~real].abs().max()) == 0.0, "padded frames are weighed"


def check_padded_frames_change_nothing(overrides: dict) -> None:
    model, clips, hidden = attention_inputs(overrides)
    other = with_padded_frames(model, clips, -clips.frames[0, 2:] + 3.0)
    with torch.no_grad():
        assert torch.equal(weights(model, clips, hidden), weights(model, other, hidden))
    # and through the whole model: the encoder's frames, teacher forcing and the output
    features, mask = tiny_clips()
    noisy = features.clone()
    noisy[0, 2:] = 1000.0
    inputs = torch.tensor([[1, 4, 5]] * 3)
    with torch.no_grad():
        assert torch.allclose(model(features, mask, inputs)[0], model(noisy, mask, inputs)[0], atol=1e-5)


def check_weights_follow_the_frame_by_frame_energies(overrides: dict) -> None:
    """alpha is softmax over the real frames of e_i = frame_energy(h, v_i), computed frame by
    frame: a scaled energy, a lost padding mask or another formula all show."""
    for seed in range(3):
        model, clips, hidden = attention_inputs(overrides, seed)
        attention = model.decoder.attention
        with torch.no_grad():
            alpha = weights(model, clips, hidden).flatten(0, 1)                    # (B*W, K)
            for width in (1, WIDTH):            # one row per clip too, as in training
                rows = hidden.view(3, WIDTH, -1)[:, :width].flatten(0, 1)
                one = weights(model, clips, rows, width).flatten(0, 1)
                rows_clips = EncodedClips(clips.frames.repeat_interleave(width, 0), None,
                                          clips.mask.repeat_interleave(width, 0), None)
                expected = reference_alpha(attention, rows, rows_clips)
                assert torch.allclose(one, expected, atol=1e-6), (seed, width)
            assert torch.allclose(alpha.view(3, WIDTH, -1)[:, :1].flatten(0, 1),
                                  weights(model, clips, hidden.view(3, WIDTH, -1)[:, 0], 1).flatten(0, 1),
                                  atol=1e-6)


ALL_CHECKS = (check_weights_are_a_distribution_over_real_frames, check_padded_frames_change_nothing,
              check_weights_follow_the_frame_by_frame_energies)
