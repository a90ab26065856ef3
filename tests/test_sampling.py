"""gan_video.sampling: a checkpoint's generator and text encoder built alone (no discriminator, no
training module), loaded strictly, making the training module's clips seed for seed."""
import pytest
import torch

from conftest import TINY
from gan_video.checkpoints import CheckpointMismatchError, read_checkpoint
from gan_video.sampling import load_sampler

P = ["a red circle moving left", "a blue square moving up", "a green triangle moving right"]


def hand_checkpoint(path, **overrides) -> str:
    """An untrained TextToVideoGAN's checkpoint whose G and G_ema (text_g and text_g_ema) differ."""
    from gan_video.module import TextToVideoGAN

    torch.manual_seed(0)
    m = TextToVideoGAN(**{**TINY, **overrides})
    with torch.no_grad():
        for p in [*m.G.parameters(), *m.text_g.parameters()]:
            p.add_(0.05 * torch.randn_like(p))
    torch.save({"hyper_parameters": dict(m.hparams), "state_dict": m.state_dict()}, path)
    return str(path)


@pytest.mark.parametrize("share_text", [True, False])
def test_sampler_makes_the_training_modules_clips(tmp_path, share_text):
    from gan_video.module import load_model

    path = hand_checkpoint(tmp_path / "m.ckpt", share_text=share_text)
    full = load_model(path)
    clips = {}
    for ema in (True, False):
        s = load_sampler(path, ema=ema)
        assert dict(s.hparams) == dict(full.hparams) and s.hparams.frames == 8
        clips[ema] = s.generate(P, [4, 5, 6], ema=ema, batch_size=2)
        assert torch.equal(clips[ema], full.generate(P, [4, 5, 6], ema=ema, batch_size=2))
        assert torch.equal(s.generate(P[:1], [4], ema=ema, frames=5), full.generate(P[:1], [4], ema=ema, frames=5))
    assert not torch.equal(clips[True], clips[False])
    with pytest.raises(ValueError, match="holds the trained .non-EMA. generator only"):
        s.generate(P, ema=True)


def test_sampling_builds_no_discriminator(tiny_checkpoint, monkeypatch):
    import gan_video
    from gan_video.models import discriminator

    def refuse(*args, **kwargs):
        raise AssertionError("sampling built a discriminator")

    monkeypatch.setattr(discriminator.Discriminator, "__init__", refuse)
    model = gan_video.load(tiny_checkpoint)
    assert model.generate(P[0], seed=1).shape == (1, 8, 64, 64, 3)
    assert load_sampler(tiny_checkpoint).generate(P, [1, 2, 3]).shape == (3, 3, 8, 64, 64)


def test_strict_loading_names_what_does_not_fit(tiny_checkpoint):
    ckpt = read_checkpoint(tiny_checkpoint)
    state = ckpt["state_dict"]
    # the discriminator's tensors are not read: a checkpoint without them still samples
    no_d = {k: v for k, v in state.items() if not k.startswith(("D.", "text_d."))}
    load_sampler({**ckpt, "state_dict": no_d})
    gone = next(k for k in state if k.startswith("G_ema."))
    with pytest.raises(CheckpointMismatchError, match=rf"'x.ckpt' does not match its own config: missing \['{gone}'\]"):
        load_sampler({**ckpt, "state_dict": {k: v for k, v in state.items() if k != gone}}, path="x.ckpt")
    with pytest.raises(CheckpointMismatchError, match=r"unexpected \['text_g_ema.stray'\]"):
        load_sampler({**ckpt, "state_dict": {**state, "text_g_ema.stray": torch.zeros(1)}})
    key = next(k for k in state if k.startswith("text_g.") and state[k].dim() == 2)
    bad = {**state, key: torch.zeros(3, 3)}
    load_sampler({**ckpt, "state_dict": bad})             # the EMA one is read, not text_g
    with pytest.raises(CheckpointMismatchError, match=rf"other shapes \['{key} \(3, 3\) vs"):
        load_sampler({**ckpt, "state_dict": bad}, ema=False)
