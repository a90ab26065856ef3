"""Every shipped config builds, runs one generator and one discriminator pass, and makes the same
clips seed for seed as when its reference numbers were recorded; every config that starts from
another run's checkpoint (``model.init_from``) can load what that run writes.

The reference numbers (``tests/data/config_golden.json``) pin each config's freshly initialised
networks: clip statistics and sampled pixels of two prompts, and every discriminator head's logits.
A change that alters what a shipped config builds (an option removed, a default changed, a key
dropped from a YAML) fails here. ``GAN_VIDEO_RECORD_GOLDEN=1 pytest tests/test_configs.py`` rewrites
the file, for a change that is meant to alter a config's networks (say so in the commit).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import yaml

from gan_video.checkpoints import GROWN_PREFIXES, initial_state
from gan_video.module import TextToVideoGAN

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
GOLDEN = Path(__file__).resolve().parent / "data" / "config_golden.json"
RECORD = os.environ.get("GAN_VIDEO_RECORD_GOLDEN") == "1"
PROMPTS = ["a red circle moving left", "a person walking to the right"]


def model_args(path: Path) -> dict:
    cfg = yaml.safe_load(path.read_text())
    data = cfg["data"]["init_args"]
    args = dict(cfg.get("model") or {})
    args.update(resolution=data.get("resolution", 64), frames=data.get("frames", 32))
    return args


def build(path: Path) -> TextToVideoGAN:
    torch.manual_seed(0)
    return TextToVideoGAN(**model_args(path)).eval()


@torch.no_grad()
def fingerprint(model: TextToVideoGAN) -> dict:
    """Clips of the (untrained) generator for two prompts and seeds, and D's logits on them."""
    hp = model.hparams
    video = model.generate(PROMPTS, seeds=[0, 1], ema=False)
    assert video.shape == (2, 3, hp.frames, hp.resolution, hp.resolution)
    assert torch.isfinite(video).all() and video.min() >= -1 and video.max() <= 1
    e = model.embed_text(model.text_d, PROMPTS)
    torch.manual_seed(1)
    times = None
    if model.D.cfg.sparse_frames:      # what a training step shows D: k frames at random times
        index = torch.randperm(hp.frames)[: model.D.cfg.sparse_frames].sort().values
        times = index.float() / max(hp.frames - 1, 1)
        e_g = model.embed_text(model.text_g, PROMPTS)
        video_d = model.G(e_g, model.G.seeded_noise([0, 1], model.device), times=times)
    else:
        video_d = video
    logits = model.D(video_d, e, None, times)
    assert logits, "the discriminator has no head"
    heads = {}
    for name, value in sorted(logits.items()):
        assert value.shape[0] == 2 and torch.isfinite(value).all(), name
        heads[name] = [round(float(v), 6) for v in value.flatten()[:4]]
    if model.D.cfg.matching:
        match = model.D.match_logits(video_d, e)
        heads["match"] = [round(float(v), 6) for v in match.flatten()[:4]]
    flat = video.flatten()
    picks = torch.linspace(0, flat.numel() - 1, 16).long()
    return {"mean": round(float(video.mean()), 6), "std": round(float(video.std()), 6),
            "pixels": [round(float(v), 6) for v in flat[picks]], "heads": heads}


def _golden() -> dict:
    return json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_builds_and_makes_the_recorded_clips(path):
    got = fingerprint(build(path))
    if RECORD:
        golden = _golden()
        golden[path.stem] = got
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
        return
    want = _golden().get(path.stem)
    assert want is not None, (f"no reference for configs/{path.name}: record it with "
                              "GAN_VIDEO_RECORD_GOLDEN=1 pytest tests/test_configs.py")
    assert sorted(got["heads"]) == sorted(want["heads"]), "the discriminator's heads changed"
    for key in ("mean", "std", "pixels"):
        assert got[key] == pytest.approx(want[key], abs=1e-4), f"{path.name}: the clips changed ({key})"
    for head, values in want["heads"].items():
        assert got["heads"][head] == pytest.approx(values, abs=1e-4), f"{path.name}: D head {head} changed"


def _init_source(path: Path):
    """The config whose run writes the checkpoint that ``path`` names in ``model.init_from``."""
    init = (yaml.safe_load(path.read_text()).get("model") or {}).get("init_from")
    if not init:
        return None
    for other in CONFIGS:
        cbs = yaml.safe_load(other.read_text())["trainer"].get("callbacks") or []
        dirs = [cb.get("init_args", {}).get("dirpath") for cb in cbs if isinstance(cb, dict)]
        if any(d and init.startswith(d.rstrip("/") + "/") for d in dirs):
            return other
    raise AssertionError(f"configs/{path.name}: init_from {init!r} is written by no config in configs/")


CHAINED = [p for p in CONFIGS if (yaml.safe_load(p.read_text()).get("model") or {}).get("init_from")]


@pytest.mark.parametrize("path", CHAINED, ids=[p.stem for p in CHAINED])
def test_init_from_loads_the_checkpoint_its_source_config_writes(path):
    source = _init_source(path)
    assert source is not None
    small, big = build(source), build(path)
    ckpt = {"state_dict": small.state_dict(), "hyper_parameters": dict(small.hparams)}
    state, kept = initial_state(ckpt, dict(big.hparams), big.state_dict(), str(source))
    big.load_state_dict(state)      # strict: every tensor has its place
    assert all(k.startswith(GROWN_PREFIXES) for k in kept), kept
    assert len(kept) < len(state) // 2     # most of the model comes from the source run
    if big.D.stem is not None:
        # grown: at the start D judges a large clip's frames as the source run's D judged them at its
        # own size (the new halvings are exact area downsampling); a trained stem of the source run
        # (random here) keeps its place behind them
        with torch.no_grad():
            for p in (small.D.stem.parameters() if small.D.stem is not None else ()):
                p.copy_(torch.randn_like(p) * 0.1)
            state, _ = initial_state({"state_dict": small.state_dict(), "hyper_parameters": dict(small.hparams)},
                                     dict(big.hparams), big.state_dict(), str(source))
            big.load_state_dict(state)
            torch.manual_seed(2)
            hp, r = big.hparams, small.hparams.resolution
            clip = torch.rand(1, 3, hp.frames, hp.resolution, hp.resolution) * 2 - 1
            shrunk = torch.nn.functional.avg_pool3d(clip, (1, hp.resolution // r, hp.resolution // r))
            e = big.embed_text(big.text_d, PROMPTS[:1])
            index = torch.arange(2)
            want = small.D(shrunk, e, index)["frame"]
            got = big.D(clip, e, index)["frame"]
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
