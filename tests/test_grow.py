"""Growing a trained model to twice its size (generator / discriminator ``grow_from``, ``init_from``)."""
import copy

import pytest
import torch
import torch.nn.functional as F

from conftest import TINY, tiny_data, tiny_trainer
from gan_video.checkpoints import CheckpointMismatchError, initial_state
from gan_video.models.discriminator import Discriminator, DiscriminatorConfig, resize_frames
from gan_video.models.generator import GeneratorConfig, build_generator
from gan_video.module import TextToVideoGAN, load_model


def grown(hp: dict, size: int = 128) -> dict:
    """TINY-style hyperparameters at ``size`` px, grown from ``hp``'s size."""
    small = hp["resolution"]
    return {**hp, "resolution": size,
            "generator": {**hp["generator"], "grow_from": small},
            "discriminator": {**hp["discriminator"], "grow_from": small}}


def test_grown_generator_shapes_and_its_new_layers_start_at_zero():
    cfg = GeneratorConfig(**{**TINY["generator"], "grow_from": 64, "background_resolution": 1})
    for size, n in ((128, 1), (256, 2)):
        g = build_generator(cfg, 16, size, 8)
        noise = g.sample_noise(2)
        clip = g(torch.randn(2, 16), noise)
        assert clip.shape == (2, 3, 8, size, size)
        assert len(g.grow_blocks) == n
        assert all(not c.weight.detach().any() and not c.bias.detach().any() for c in g.grow_layers)
    with pytest.raises(ValueError, match="below the clip size"):
        build_generator(cfg, 16, 64, 8)
    with pytest.raises(ValueError, match="grow_from is for arch: layered"):
        build_generator(GeneratorConfig(arch="animator", grow_from=64), 16, 128, 8)


def test_grown_discriminator_starts_as_the_small_one_on_area_downsampled_frames():
    torch.manual_seed(0)
    small_cfg = DiscriminatorConfig(**TINY["discriminator"], matching=0.0)
    small = Discriminator(small_cfg, 16, 64, 8)
    big = Discriminator(DiscriminatorConfig(**{**TINY["discriminator"], "grow_from": 64}), 16, 128, 8)
    missing, unexpected = big.load_state_dict(small.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("stem.") for k in missing) and missing
    video, text = torch.rand(3, 3, 8, 128, 128) * 2 - 1, torch.randn(3, 16)
    index = torch.tensor([1, 5])
    a = big(video, text, index)
    b = small(resize_frames(video, 64), text, index)
    assert a.keys() == b.keys() == {"frame", "video"}
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-5)
    # the stem learns: a gradient reaches its zero-initialised convs, and then the scores differ
    a["frame"].sum().backward()
    assert big.stem.steps[0][3].weight.grad.abs().sum() > 0


def test_init_from_a_small_checkpoint_starts_the_grown_run(tmp_path):
    torch.manual_seed(0)
    hp = {**TINY, "generator": {**TINY["generator"], "background_resolution": 1}}
    small = TextToVideoGAN(**hp)
    tiny_trainer(tmp_path, max_steps=2).fit(small, datamodule=tiny_data())
    ckpt = {"state_dict": small.state_dict(), "hyper_parameters": dict(small.hparams)}
    path = tmp_path / "small.ckpt"
    torch.save(ckpt, path)

    big = TextToVideoGAN(**grown(hp), init_from=str(path))
    fresh = copy.deepcopy(big.state_dict())
    kept = big.init_weights(str(path))
    assert kept and all(k.startswith(("G.grow_", "G_ema.grow_", "D.stem.")) for k in kept)
    for k, v in small.state_dict().items():
        if k != "batches":
            assert torch.equal(big.state_dict()[k], v), k
    assert all(torch.equal(big.state_dict()[k], fresh[k]) for k in kept)
    # the grown EMA generator draws the small one's clips, upsampled (the layers upsampled before the
    # warp, so close, not equal)
    prompts = ["a red circle moving left", "a blue square moving up"]
    a = big.generate(prompts, seeds=[0, 1])
    b = small.generate(prompts, seeds=[0, 1])
    assert a.shape == (2, 3, 8, 128, 128)
    down = resize_frames(a, 64)
    assert (down - b).abs().mean() < 0.02, (down - b).abs().mean()
    assert (down - b).abs().mean() < 0.2 * (b - b.mean()).abs().mean()

    # `gan-video fit` path: the module loads init_from itself when training starts (setup), and a
    # few grown training steps from there change the new layers, without NaN
    run = TextToVideoGAN(**grown(hp), init_from=str(path))
    trainer = tiny_trainer(tmp_path / "grown", max_steps=4)
    trainer.fit(run, datamodule=tiny_data(resolution=128))
    state = run.state_dict()
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert state["G.grow_layers.0.weight"].abs().sum() > 0
    assert state["D.stem.steps.0.3.weight"].abs().sum() > 0
    w0, w = small.state_dict()["G.mapping.0.weight"], state["G.mapping.0.weight"]
    assert (w - w0).abs().max() < 5e-3 < (fresh["G.mapping.0.weight"] - w0).abs().max()

    # resuming the grown run does not read init_from again (the file may be gone by then)
    trainer.save_checkpoint(tmp_path / "grown.ckpt")
    path.unlink()
    resumed = TextToVideoGAN(**grown(hp), init_from=str(path))
    tiny_trainer(tmp_path / "grown", max_steps=6).fit(resumed, datamodule=tiny_data(resolution=128),
                                                      ckpt_path=str(tmp_path / "grown.ckpt"))
    assert int(resumed.batches) == 3


def test_init_from_refuses_a_checkpoint_of_another_model(tmp_path):
    small = TextToVideoGAN(**TINY)
    ckpt = {"state_dict": small.state_dict(), "hyper_parameters": dict(small.hparams)}
    other = {**TINY, "generator": {**TINY["generator"], "z_content": 12}}
    big = TextToVideoGAN(**grown(other))
    with pytest.raises(CheckpointMismatchError, match="generator.z_content: checkpoint 8 vs expected 12"):
        initial_state(ckpt, dict(big.hparams), big.state_dict(), "small.ckpt")
    only_g = {**grown(TINY), "discriminator": dict(TINY["discriminator"])}
    with pytest.raises(CheckpointMismatchError, match="grow_from differ"):
        initial_state(ckpt, dict(TextToVideoGAN(**only_g).hparams), {}, "small.ckpt")
    with pytest.raises(FileNotFoundError, match="train the run it starts from first"):
        TextToVideoGAN(**grown(TINY)).init_weights(str(tmp_path / "absent.ckpt"))


def test_grown_checkpoint_loads_without_its_init_file(tmp_path):
    """A grown run's checkpoint names the file it started from; loading it for sampling must not
    need that file (another machine has only the grown checkpoint)."""
    big = TextToVideoGAN(**grown(TINY), init_from=str(tmp_path / "gone.ckpt"))
    path = tmp_path / "big.ckpt"
    torch.save({"state_dict": big.state_dict(), "hyper_parameters": dict(big.hparams)}, path)
    loaded = load_model(str(path))
    assert loaded.hparams.resolution == 128 and loaded.G.grow_blocks
    clip = loaded.generate(["a red circle moving left"], seeds=[3])
    assert clip.shape == (1, 3, 8, 128, 128)


def test_fit_of_the_128_config_without_the_64_run_says_what_to_train(tmp_path, capsys, monkeypatch):
    """`gan-video fit --config configs/shapes_128.yaml` before the 64 px run: one line naming the
    missing file and the command that writes it, exit status 2, no training."""
    from pathlib import Path

    from gan_video.cli import main

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)                       # no runs/shapes/checkpoints/last.ckpt here
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", str(root / "configs" / "shapes_128.yaml"), "--trainer.max_steps", "2",
              "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
              "--data.init_args.num_workers", "0", "--data.init_args.batch_size", "2"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err[-800:]
    assert "model.init_from 'runs/shapes/checkpoints/last.ckpt' does not exist" in err
    assert "gan-video fit --config configs/shapes.yaml" in err
    assert not list(tmp_path.rglob("*.ckpt"))
