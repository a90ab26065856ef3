"""discriminator.matching_upsample: the text-matching head reads frames upsampled."""
import pytest
import torch
import torch.nn.functional as F

from gan_video.models.discriminator import Discriminator, DiscriminatorConfig


def test_the_matching_head_sees_the_frames_upsampled_and_still_scores_every_frame_against_every_caption():
    torch.manual_seed(0)
    seen = []
    video = torch.rand(3, 3, 8, 64, 64) * 2 - 1
    index = torch.tensor([1, 5])
    for factor in (1, 2):
        d = Discriminator(DiscriminatorConfig(matching=1.0, matching_upsample=factor), 16, 64, 8)
        d.matcher.net[0].register_forward_hook(lambda m, args, out: seen.append(args[0].detach()))
        logits = d.match_logits(video, torch.randn(4, 16), index)
        assert logits.shape == (6, 4) and torch.isfinite(logits).all()
    frames = video[:, :, index].transpose(1, 2).reshape(6, 3, 64, 64)     # clip-major: clip 0 frames 1, 5, ...
    assert torch.equal(seen[0], frames)
    assert seen[1].shape == (6, 3, 128, 128)
    assert torch.allclose(seen[1], F.interpolate(frames, scale_factor=2, mode="bilinear", align_corners=False))


def test_matching_upsample_below_one_is_refused():
    with pytest.raises(ValueError, match="matching_upsample 0 must be >= 1"):
        Discriminator(DiscriminatorConfig(matching=1.0, matching_upsample=0), 16, 64, 8)
