"""generator.foreground_resolution: how the layered sprite's colour is drawn."""
import pytest
import torch

from conftest import train_generator
from gan_video.models.generator import GeneratorConfig, build_generator

SMALL = dict(z_content=8, z_motion=4, style_dim=16, base_channels=4, max_channels=16, background_resolution=1,
             layer_alpha="clamp")


def test_a_flat_foreground_gives_every_pixel_of_a_clips_sprite_one_colour():
    torch.manual_seed(0)
    g = build_generator(GeneratorConfig(foreground_resolution=1, **SMALL), 8, 64, 8)
    with torch.no_grad():
        g.to_foreground.bias.copy_(torch.tensor([2.0, -1.0, 0.5]))   # a clear colour to find again
        fg, _ = g.layers(g.mapping(torch.randn(3, 16)))
    rgb, alpha = fg[:, :3], fg[:, 3:]
    seen = alpha[:, 0] > 0.2
    assert seen.any(dim=(1, 2)).all()
    colour = rgb / alpha.clamp(min=1e-6)                 # un-premultiplied
    for b in range(3):
        c = colour[b][:, seen[b]]                          # [3, pixels]
        assert (c.std(dim=1) < 1e-4).all(), c.std(dim=1)
    # and the clips differ in colour (it comes from the content code)
    means = torch.stack([colour[b][:, seen[b]].mean(dim=1) for b in range(3)])
    assert (means[0] - means[1]).abs().max() > 1e-3
    # a k x k grid draws a smooth gradient instead
    g2 = build_generator(GeneratorConfig(foreground_resolution=4, **SMALL), 8, 64, 8)
    with torch.no_grad():
        fg2, _ = g2.layers(g2.mapping(torch.randn(1, 16)))
    assert not torch.allclose(fg2[0, :3, 10, 10] / fg2[0, 3, 10, 10].clamp(min=1e-6),
                              fg2[0, :3, 50, 50] / fg2[0, 3, 50, 50].clamp(min=1e-6))


def test_flat_foreground_trains_without_nan():
    torch.manual_seed(0)
    g = build_generator(GeneratorConfig(foreground_resolution=1, **SMALL), 8, 64, 8)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    clip = train_generator(g)
    assert torch.isfinite(clip).all() and clip.shape == (2, 3, 8, 64, 64)
    assert not torch.equal(before["to_foreground.weight"], g.state_dict()["to_foreground.weight"])


def test_sprite_options_are_refused_where_they_cannot_apply():
    with pytest.raises(ValueError, match="foreground_resolution is for arch: layered"):
        build_generator(GeneratorConfig(arch="animator", z_content=8, z_motion=4, style_dim=16, base_channels=2,
                                        max_channels=16, foreground_resolution=16), 8, 64, 8)
    with pytest.raises(ValueError, match="foreground_resolution -1 must be >= 0"):
        build_generator(GeneratorConfig(foreground_resolution=-1, **SMALL), 8, 64, 8)


def test_every_parameter_draws_something_so_ddp_needs_no_unused_parameter_search():
    # the trunk draws the alpha (and the RGB unless foreground_resolution): every block is used
    for kw, blocks in ((dict(foreground_resolution=1), 4), (dict(), 4)):
        torch.manual_seed(0)
        g = build_generator(GeneratorConfig(**{**SMALL, **kw}), 8, 64, 8)
        assert len(g.blocks) == blocks, kw
        g(torch.randn(2, 8), g.sample_noise(2)).square().mean().backward()
        unused = [n for n, p in g.named_parameters() if p.grad is None]
        assert unused == [], (kw, unused)
