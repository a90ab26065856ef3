"""generator.outline_harmonics: the layered sprite's alpha as a star-shaped region whose radius is a
Fourier series of the angle (gan_video/models/outline.py)."""
import math

import pytest
import torch

from conftest import mask_iou, train_generator
from gan_video.models.generator import GeneratorConfig, build_generator
from gan_video.models.outline import FourierOutline

SMALL = dict(z_content=8, z_motion=4, style_dim=16, base_channels=4, max_channels=16, background_resolution=1,
             foreground_resolution=1, layer_alpha="clamp")


def set_outline(outline: FourierOutline, radius: float, cos_terms=(), sin_terms=(), centre=(0.0, 0.0)) -> None:
    """Makes ``outline`` draw the same shape for every style: radius in half-frames, harmonics given."""
    k = outline.harmonics
    with torch.no_grad():
        outline.head.weight.zero_()
        bias = torch.zeros(3 + 2 * k)
        bias[:2] = torch.tensor(centre)
        bias[2] = math.log(radius)
        for i, v in enumerate(cos_terms):      # the head's outputs are the harmonics times their order
            bias[3 + i] = v * (i + 1)
        for i, v in enumerate(sin_terms):
            bias[3 + k + i] = v * (i + 1)
        outline.head.bias.copy_(bias)


def pixel_grid(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    c = (torch.arange(n, dtype=torch.float64) * 2 + 1) / n - 1
    return c[None, :].expand(n, n), c[:, None].expand(n, n)       # x, y in half-frames


@pytest.mark.parametrize("size", [64, 128, 256])
def test_zero_harmonics_draw_a_round_circle_with_a_one_pixel_edge_at_any_size(size):
    torch.manual_seed(0)
    g = build_generator(GeneratorConfig(outline_harmonics=12, **SMALL), 8, size, 8)
    set_outline(g.outline, radius=0.25, centre=(0.1, -0.2))
    with torch.no_grad():
        alpha = g.layers(g.mapping(torch.randn(2, 16)))[0][:, 3]
    assert alpha.shape == (2, size, size) and alpha.min() >= 0 and alpha.max() <= 1
    x, y = pixel_grid(size)
    ideal = ((x - 0.1) ** 2 + (y + 0.2) ** 2).sqrt() < 0.25
    assert (mask_iou(alpha > 0.5, ideal) > 0.98).all()
    # area to a pixel: the clamped alpha is the pixel's coverage
    r_px = 0.25 * size / 2
    assert torch.allclose(alpha.sum(dim=(1, 2)).double(), torch.full((2,), math.pi * r_px ** 2, dtype=torch.float64),
                          rtol=0.02)
    fringe = ((alpha > 0.02) & (alpha < 0.98)).float().sum(dim=(1, 2))
    circumference = 2 * math.pi * r_px
    assert (fringe < 1.6 * circumference).all() and (fringe > 0.6 * circumference).all(), fringe


def test_the_harmonics_of_a_square_and_a_triangle_draw_them():
    # the log radius of a square of inradius 0.2 and of an equilateral triangle of circumradius 0.3,
    # expanded to 12 harmonics numerically here; drawn back by the model they must read as those shapes
    phi = torch.linspace(0, 2 * math.pi, 4097, dtype=torch.float64)[:-1]
    square = 0.2 / torch.maximum(phi.cos().abs(), phi.sin().abs())
    triangle = 0.15 / torch.stack([(phi - (2 * math.pi * i / 3 + math.pi / 6)).cos() for i in range(3)]).amax(0)
    x, y = pixel_grid(128)
    rho, ang = (x * x + y * y).sqrt(), torch.atan2(y, x)
    for radius, true in ((square, lambda r, a: r < 0.2 / torch.maximum(a.cos().abs(), a.sin().abs())),
                         (triangle, None)):
        log_r = radius.log()
        a = [2 * (log_r * (k * phi).cos()).mean().item() for k in range(1, 13)]
        b = [2 * (log_r * (k * phi).sin()).mean().item() for k in range(1, 13)]
        outline = FourierOutline(4, 12)
        set_outline(outline, math.exp(log_r.mean().item()), a, b)
        with torch.no_grad():
            mask = outline(torch.zeros(1, 4), (128, 128))[0, 0] > 0
        if true is None:    # inside the triangle: on the inner side of its three edges
            true = lambda r, a: torch.stack([r * (a - (2 * math.pi * i / 3 + math.pi / 6)).cos()
                                             for i in range(3)]).amax(0) < 0.15
        ideal = true(rho, ang)
        assert mask_iou(mask, ideal) > 0.95
        circle = rho < (ideal.double().mean() * 4 / math.pi).sqrt()    # a circle of the same area
        assert mask_iou(mask, circle) < 0.92


def test_a_sprite_drawn_by_its_outline_builds_no_trunk_and_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    g = build_generator(GeneratorConfig(outline_harmonics=6, **SMALL), 8, 64, 8)
    assert len(g.blocks) == 0 and g.const is None and g.to_layers is None and len(g.grow_blocks) == 0
    clip = g(torch.randn(2, 8), g.sample_noise(2))
    assert clip.shape == (2, 3, 8, 64, 64)
    clip.square().mean().backward()
    assert [n for n, p in g.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0] == []
    # with the trunk drawing the RGB, the trunk is built and used
    g2 = build_generator(GeneratorConfig(**{**SMALL, "foreground_resolution": 0, "outline_harmonics": 6}), 8, 64, 8)
    assert len(g2.blocks) == 4 and g2.parts == {"rgb": 3}
    g2(torch.randn(2, 8), g2.sample_noise(2)).square().mean().backward()
    assert [n for n, p in g2.named_parameters() if p.grad is None] == []


def test_an_outline_model_trains_without_nan_and_a_128_px_one_loads_it_strictly():
    torch.manual_seed(0)
    g = build_generator(GeneratorConfig(outline_harmonics=8, **SMALL), 8, 64, 8)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    clip = train_generator(g)
    assert torch.isfinite(clip).all()
    assert not torch.equal(before["outline.head.weight"], g.state_dict()["outline.head.weight"])
    # nothing in the model depends on the size: the 128 px model is the same tensors (grow_from or not)
    for kw in (dict(), dict(grow_from=64)):
        big = build_generator(GeneratorConfig(outline_harmonics=8, **SMALL, **kw), 8, 128, 8)
        big.load_state_dict(g.state_dict())
        style = g.mapping(torch.randn(2, 16))
        with torch.no_grad():
            a64, a128 = g.layers(style)[0][:, 3], big.layers(style)[0][:, 3]
        pooled = torch.nn.functional.avg_pool2d(a128[:, None], 2)[:, 0]
        assert mask_iou(a64 > 0.5, pooled > 0.5).min() > 0.97


def test_outline_options_are_refused_where_they_cannot_apply():
    with pytest.raises(ValueError, match="outline_harmonics is for arch: layered"):
        build_generator(GeneratorConfig(arch="animator", z_content=8, z_motion=4, style_dim=16, base_channels=2,
                                        max_channels=16, outline_harmonics=8), 8, 64, 8)
    with pytest.raises(ValueError, match="outline_harmonics -2 must be >= 0"):
        build_generator(GeneratorConfig(outline_harmonics=-2, **SMALL), 8, 64, 8)
