"""generator.alpha_resolution and generator.foreground_resolution: how the layered sprite is drawn."""
import pytest
import torch
from torch import nn

from conftest import mask_iou, train_generator
from gan_video.models.generator import GeneratorConfig, build_generator

SMALL = dict(z_content=8, z_motion=4, style_dim=16, base_channels=4, max_channels=16, background_resolution=1,
             layer_alpha="clamp")


class FixedField(nn.Module):
    """Stands in for ``to_alpha``: returns one given field for every clip."""

    def __init__(self, field: torch.Tensor):
        super().__init__()
        self.field = field

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.field.expand(x.shape[0], 1, -1, -1)


def circle_distance(n: int, radius: float) -> torch.Tensor:
    """``[1, 1, n, n]``: signed distance (inside positive) to a circle of ``radius`` (in pixels of an
    ``n``-px frame) centred in the frame, at pixel centres."""
    c = torch.arange(n, dtype=torch.float32) + 0.5 - n / 2
    return (radius - (c[:, None] ** 2 + c[None, :] ** 2).sqrt())[None, None]


# a circle's distance field sampled at 32 px is round again to the pixel after bilinear upsampling;
# at 16 px (a radius of two cells) interpolation shrinks it a little (0.92), nearest upsampling of the
# same 16 px field gives a blocky 0.85
@pytest.mark.parametrize("small, least_iou", [(16, 0.9), (32, 0.99)])
def test_alpha_from_a_small_field_draws_a_round_circle_with_a_thin_edge(small, least_iou):
    torch.manual_seed(0)
    g = build_generator(GeneratorConfig(alpha_resolution=small, **SMALL), 8, 64, 8)
    # a circle of radius 8 px at 64 px (the shapes' size), given to the model as its small field
    g.to_alpha = FixedField(circle_distance(small, 8 * small / 64))
    with torch.no_grad():
        alpha = g.layers(g.mapping(torch.randn(2, 16)))[0][:, 3]
    iou = mask_iou(alpha > 0.5, circle_distance(64, 8)[0, 0] > 0)
    assert (iou > least_iou).all(), iou
    # upsampled and steepened by the size ratio: the edge is about one 64-px pixel wide, as a field
    # drawn at 64 px would be, not small / 64 times wider
    fringe = ((alpha > 0.05) & (alpha < 0.95)).float().sum(dim=(1, 2))
    circumference = 2 * torch.pi * 8
    assert (fringe < 2.5 * circumference).all() and (fringe > 0.5 * circumference).all(), fringe
    assert alpha[:, 0].abs().max() == 0 and alpha[:, 32, 32].min() == 1


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


def test_small_alpha_and_flat_foreground_train_without_nan():
    torch.manual_seed(0)
    g = build_generator(GeneratorConfig(alpha_resolution=16, foreground_resolution=1, alpha_prior=0.5, **SMALL),
                        8, 64, 8)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    clip = train_generator(g)
    assert torch.isfinite(clip).all() and clip.shape == (2, 3, 8, 64, 64)
    for name in ("to_alpha.weight", "to_foreground.weight"):
        assert not torch.equal(before[name], g.state_dict()[name]), name


def test_sprite_options_are_refused_where_they_cannot_apply():
    for option in ("alpha_resolution", "foreground_resolution"):
        with pytest.raises(ValueError, match=f"{option} is for arch: layered"):
            build_generator(GeneratorConfig(arch="animator", z_content=8, z_motion=4, style_dim=16, base_channels=2,
                                            max_channels=16, **{option: 16}), 8, 64, 8)
    for size in (64, 12, 4):
        with pytest.raises(ValueError, match=rf"alpha_resolution {size} must be one of the trunk's sizes below"):
            build_generator(GeneratorConfig(alpha_resolution=size, **SMALL), 8, 64, 8)
    with pytest.raises(ValueError, match="foreground_resolution -1 must be >= 0"):
        build_generator(GeneratorConfig(foreground_resolution=-1, **SMALL), 8, 64, 8)


def test_every_parameter_draws_something_so_ddp_needs_no_unused_parameter_search():
    # flat sprite colour, alpha from the 32 px block, flat background: the trunk ends at 32 px and
    # nothing at 64 px is built; with the trunk's own alpha, RGB and background everything is used
    for kw, blocks in ((dict(alpha_resolution=32, foreground_resolution=1), 3), (dict(alpha_resolution=16), 4),
                       (dict(foreground_resolution=1), 4), (dict(), 4)):
        torch.manual_seed(0)
        g = build_generator(GeneratorConfig(**{**SMALL, **kw}), 8, 64, 8)
        assert len(g.blocks) == blocks, kw
        g(torch.randn(2, 8), g.sample_noise(2)).square().mean().backward()
        unused = [n for n, p in g.named_parameters() if p.grad is None]
        assert unused == [], (kw, unused)


def test_a_grown_model_with_a_small_alpha_field_draws_the_small_models_outline_at_twice_the_size():
    torch.manual_seed(0)
    kw = dict(SMALL, alpha_resolution=32, foreground_resolution=1)
    small = build_generator(GeneratorConfig(**kw), 8, 64, 8)
    grown = build_generator(GeneratorConfig(**kw, grow_from=64), 8, 128, 8)
    grown.load_state_dict(small.state_dict())          # strict: nothing new to learn in G
    small.to_alpha = grown.to_alpha = FixedField(circle_distance(32, 5.0))   # radius 10 px at 64 px
    style = small.mapping(torch.randn(2, 16))
    with torch.no_grad():
        a64 = small.layers(style)[0][:, 3]
        a128 = grown.layers(style)[0][:, 3]
    assert a128.shape == (2, 128, 128)
    m64, m128 = a64 > 0.5, torch.nn.functional.avg_pool2d(a128[:, None], 2)[:, 0] > 0.5
    ideal = circle_distance(64, 10)[0, 0] > 0
    for mask in (m64, m128):
        assert (mask_iou(mask, ideal) > 0.97).all()
    # the edge stays about one pixel of the clip wide: at 128 px it is half as wide in frame units
    fringe = lambda a: ((a > 0.05) & (a < 0.95)).float().sum(dim=(1, 2))
    assert (fringe(a128) < 2.5 * fringe(a64)).all() and (fringe(a128) > 1.2 * fringe(a64)).all()
