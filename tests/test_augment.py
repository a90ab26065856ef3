"""DiffAugment for the discriminator (discriminator.augment): each transform per clip, identical for
all frames of a clip, differentiable, only in training, and the GAN trains with it."""
import copy

import pytest
import pytorch_lightning as pl
import torch

from conftest import TINY, tiny_data, tiny_trainer
from gan_video.losses import GANLoss
from gan_video.models.augment import augment, cutout, parse_policy, translation
from gan_video.models.discriminator import Discriminator, DiscriminatorConfig
from gan_video.module import TextToVideoGAN


def test_policy_parsing_orders_names_and_rejects_unknown_ones():
    assert parse_policy("cutout, translation") == ("translation", "cutout")
    assert parse_policy("color,translation,cutout") == ("color", "translation", "cutout")
    assert parse_policy("") == ()
    with pytest.raises(ValueError, match=r"unknown discriminator.augment \['rotate'\].*translation"):
        parse_policy("translation,rotate")
    with pytest.raises(ValueError, match="rotate"):
        Discriminator(DiscriminatorConfig(augment="rotate"), 8, 64, 8)


def test_translation_shifts_every_frame_of_a_clip_by_the_same_whole_pixels():
    torch.manual_seed(0)
    video = torch.rand(6, 3, 4, 32, 32) + 1.0                # no zeros: the fill shows where it shifted
    out = translation(video)
    assert out.shape == video.shape
    for i in range(6):
        found = []
        for dy in range(-4, 5):
            for dx in range(-4, 5):
                shifted = torch.zeros_like(video[i])
                ys, yd = slice(max(0, -dy), 32 - max(0, dy)), slice(max(0, dy), 32 - max(0, -dy))
                xs, xd = slice(max(0, -dx), 32 - max(0, dx)), slice(max(0, dx), 32 - max(0, -dx))
                shifted[..., yd, xd] = video[i][..., ys, xs]
                if torch.equal(shifted, out[i]):
                    found.append((dy, dx))
        assert len(found) == 1, f"clip {i}: not one whole-pixel shift of <= 4 px ({found})"
    shifts = {tuple(out[i].eq(0).flatten().nonzero()[:3].flatten().tolist()) for i in range(6)}
    assert len(shifts) > 1, "every clip got the same shift"


def test_cutout_hides_one_square_at_the_same_place_in_every_frame():
    torch.manual_seed(1)
    video = torch.rand(8, 3, 5, 32, 32) + 1.0
    out = cutout(video)
    hidden = out == 0
    for i in range(8):
        mask = hidden[i, 0, 0]
        assert torch.equal(hidden[i], mask.expand_as(hidden[i])), "the square moves between frames or channels"
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        assert 1 <= len(rows) <= 16 and 1 <= len(cols) <= 16
        assert mask.sum() == len(rows) * len(cols), "not a rectangle (a square cut by the frame edge)"
        assert torch.equal(out[i][~hidden[i]], video[i][~hidden[i]])
    assert (hidden[:, 0, 0].flatten(1).sum(1) == 256).any(), "no whole 16x16 square in 8 clips"


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_still_clips_stay_still_and_gradients_reach_the_input(policy):
    torch.manual_seed(2)
    frame = torch.randn(4, 3, 1, 16, 16)
    video = frame.expand(4, 3, 6, 16, 16).clone().requires_grad_(True)
    out = augment(video, parse_policy(policy))
    assert torch.allclose(out, out[:, :, :1].expand_as(out)), "a transform differs between frames of a clip"
    assert not torch.allclose(out, video)
    out.square().sum().backward()
    assert video.grad is not None and torch.isfinite(video.grad).all() and video.grad.abs().sum() > 0


def test_discriminator_augments_only_in_training():
    torch.manual_seed(3)
    plain = Discriminator(DiscriminatorConfig(sparse_frames=3), 8, 64, 8)
    aug = Discriminator(DiscriminatorConfig(sparse_frames=3, augment="translation,cutout"), 8, 64, 8)
    aug.load_state_dict(plain.state_dict())
    video, text, times = torch.randn(4, 3, 3, 64, 64), torch.randn(4, 8), torch.tensor([0.0, 0.4, 1.0])
    index = aug.frame_index(3, "cpu")
    aug.eval(), plain.eval()
    for a, b in zip(aug(video, text, index, times).values(), plain(video, text, index, times).values()):
        torch.testing.assert_close(a, b)
    aug.train()
    first, second = aug(video, text, index, times), aug(video, text, index, times)
    assert not torch.equal(first["frame"], second["frame"]), "training mode saw the clips unaugmented"


def test_training_with_augment_changes_weights_without_nan(tmp_path):
    pl.seed_everything(0)
    cfg = copy.deepcopy(TINY)
    cfg["generator"]["arch"] = "animator"
    cfg["discriminator"].update(sparse_frames=3, augment="color,translation,cutout")
    model = TextToVideoGAN(**cfg, reverse_negatives=0.5, r1_gamma=1.0, r1_every=2)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    tiny_trainer(tmp_path, max_steps=6).fit(model, datamodule=tiny_data())
    after = model.state_dict()
    assert int(model.batches) == 3 and all(torch.isfinite(v).all() for v in after.values())
    for prefix in ("G.", "D.frame.", "D.motion."):
        assert any(not torch.equal(before[k], after[k]) for k in before
                   if k.startswith(prefix) and before[k].dtype.is_floating_point), prefix


def test_generator_weight_of_the_matching_loss():
    """discriminator.matching_g scales only G's matching term: the G loss at weight 1 minus the G
    loss at weight 0 is the logged matching cross-entropy; None means the same as matching."""

    class Head(torch.nn.Module):
        def forward(self, video, text, index=None, times=None):
            return {"frame": video.mean((1, 2, 3, 4)) * 0 + 1.5}

    class FakeD(Head):
        def __init__(self, matching, matching_g):
            super().__init__()
            self.cfg = DiscriminatorConfig(matching=matching, matching_g=matching_g)
            self.matcher = object()

        matching_g = Discriminator.matching_g

        def match_logits(self, video, text, index=None):
            rows = torch.arange(text.shape[0], dtype=torch.float32).expand(2 * video.shape[0], -1)
            return rows + 0 * video.sum()           # 2 frames per clip, logits 0, 1, 2 for every frame

    video, text, caps = torch.randn(3, 3, 2, 4, 4), torch.randn(3, 5), ["a", "b", "c"]
    loss = GANLoss()
    full, logs = loss.generator(FakeD(2.0, None), video, text, None, caps)
    none, _ = loss.generator(FakeD(2.0, 0.0), video, text, None, caps)
    half, _ = loss.generator(FakeD(2.0, 0.5), video, text, None, caps)
    torch.testing.assert_close(none, torch.tensor(-1.5))
    torch.testing.assert_close(full - none, 2.0 * logs["g_match"])
    torch.testing.assert_close(half - none, 0.5 * logs["g_match"])
    with pytest.raises(ValueError, match="matching_g"):
        Discriminator(DiscriminatorConfig(matching=1.0, matching_g=-0.5), 8, 64, 8)
