"""Options that gan_video had and removed, so that checkpoints and exports written before still load.

A checkpoint keeps every model setting it was trained with, removed ones included. Where such a
setting holds the value that meant "off" (the default it had), the model is the same without it and
the setting is dropped silently; any other value built a network this version cannot build, and
loading fails with a message that names the setting and where its result is recorded.
"""
from __future__ import annotations

from typing import Any

# the last commit that had every one of them
LAST_COMMIT = "7aa852a"

# section of the model hyperparameters ("" for the top level) -> removed setting -> its "off" value
RETIRED: dict[str, dict[str, Any]] = {
    "generator": {"alpha_prior": 0.0, "coords": False, "texture_noise": False, "outline_decay": 1.0,
                  "alpha_resolution": 0},
    "discriminator": {"conditioning": "projection", "num_filters": None, "matching_g": None,
                      "matching_upsample": 1, "augment": "", "projected_frames": False},
}
# removed values of settings that remain
RETIRED_VALUES: dict[str, tuple] = {"mismatch": ("counterfactual",)}


class RetiredOptionError(ValueError):
    """A checkpoint or export uses an option that this version of gan_video no longer has."""


def _refuse(name: str, value: Any, where: str) -> None:
    raise RetiredOptionError(
        f"{where} was trained with model.{name}: {value!r}, an option removed from gan_video after it was "
        f"tried and not adopted (its figures: docs/results.md, 'Tried and not adopted'). This version "
        f"cannot build that model; load it with gan_video at commit {LAST_COMMIT} or earlier, or train "
        "it again without the option")


def drop_retired(hparams: dict, where: str = "the checkpoint") -> dict:
    """``hparams`` (a TextToVideoGAN's, as a checkpoint or export stores them) without the removed
    settings that hold their "off" value; raises :class:`RetiredOptionError` for any other value."""
    out = dict(hparams)
    for section, removed in RETIRED.items():
        cfg = out.get(section)
        if not isinstance(cfg, dict):
            continue
        cfg = dict(cfg)
        for name, off in removed.items():
            if name in cfg:
                value = cfg.pop(name)
                # off None: any value is harmless on its own (num_filters only mattered with
                # conditioning: filters, refused by itself; matching_g equal to matching changed nothing)
                if off is not None and value != off:
                    _refuse(f"{section}.{name}", value, where)
                if name == "matching_g" and value is not None and value != cfg.get("matching"):
                    _refuse(f"{section}.{name}", value, where)
        out[section] = cfg
    for name, values in RETIRED_VALUES.items():
        if out.get(name) in values:
            _refuse(name, out[name], where)
    return out
