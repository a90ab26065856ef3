"""generator.alpha_prior: the layered generator's loss that pushes the sprite's alpha to 0 or 1."""
import pytest
import torch

from gan_video.models.generator import GeneratorConfig, build_generator

SMALL = dict(z_content=8, z_motion=4, style_dim=16, base_channels=4, max_channels=16, background_resolution=1)


def test_alpha_prior_is_off_by_default_and_draws_no_random_numbers():
    g = build_generator(GeneratorConfig(**SMALL), 8, 64, 8)
    torch.manual_seed(3)
    loss, logs = g.auxiliary_loss(torch.randn(2, 8), None)
    after = torch.rand(1)
    torch.manual_seed(3)
    torch.randn(2, 8)
    assert loss.item() == 0.0 and logs == {} and torch.equal(after, torch.rand(1))


def test_alpha_prior_measures_opacity_and_half_transparency_and_training_on_it_removes_both():
    torch.manual_seed(0)
    g = build_generator(GeneratorConfig(alpha_prior=2.0, **SMALL), 8, 64, 8)
    text = torch.randn(4, 8)
    with torch.no_grad():
        alpha = g.layers(g.mapping(torch.cat([text, torch.randn(4, 8)], 1)))[0][:, 3]
    assert 0.3 < torch.minimum(alpha, 1 - alpha).mean() < 0.5       # a sigmoid alpha starts near 0.5
    loss, logs = g.auxiliary_loss(text, None)
    assert 0.7 < logs["alpha_prior"].item() < 1.0
    opt = torch.optim.Adam(g.parameters(), lr=1e-2)
    first = None
    for _ in range(40):
        loss, logs = g.auxiliary_loss(text, None)
        assert loss.item() == pytest.approx(2.0 * logs["alpha_prior"].item())
        first = first if first is not None else logs["alpha_prior"].item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert logs["alpha_prior"].item() < 0.3 * first
    # what it trained, with no discriminator to ask for an object: fresh clips' layers are transparent
    with torch.no_grad():
        alpha = g.layers(g.mapping(torch.cat([text, torch.randn(4, 8)], 1)))[0][:, 3]
    assert (alpha < 0.05).float().mean() > 0.6 and alpha.mean() < 0.1


def test_alpha_prior_is_refused_where_it_cannot_apply():
    with pytest.raises(ValueError, match="alpha_prior is for arch: layered"):
        build_generator(GeneratorConfig(arch="animator", alpha_prior=0.5, z_content=8, z_motion=4, style_dim=16,
                                        base_channels=2, max_channels=16), 8, 64, 8)
    with pytest.raises(ValueError, match=r"alpha_prior -1.0 must be >= 0 \(0: off\)"):
        build_generator(GeneratorConfig(alpha_prior=-1.0, **SMALL), 8, 64, 8)
