"""CLIPSIM (GODIVA's definition): the mean over frames of the cosine similarity between the CLIP image
embedding of each frame and the CLIP text embedding of the prompt, averaged over clips.

Reported as the raw cosine (in [-1, 1]), NOT scaled by 100 (papers differ; Make-A-Video's 0.3049 on
MSR-VTT is on this scale). The model is open_clip's ViT-B-32 by default; weights come from an
explicit local file, ``$GAN_VIDEO_CLIP_WEIGHTS``, or an open_clip pretrained tag (``openai``,
``laion2b_s34b_b79k``, ...), which open_clip downloads once into its cache for users who are online.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import Metric

from ..cache import offline_hub
from ..weights import WeightsNotFoundError

DEFAULT_MODEL, DEFAULT_TAG = "ViT-B-32", "openai"


def load_clip(model: str = DEFAULT_MODEL, pretrained: Optional[str] = None) -> tuple[nn.Module, object]:
    """(open_clip model in eval mode, its tokenizer). ``pretrained``: a local weights file or an
    open_clip tag; default ``$GAN_VIDEO_CLIP_WEIGHTS`` or ``openai``."""
    import open_clip

    from ..weights import given_source
    from ..weights_text import ENV_CLIP, clip_source

    given, origin = given_source(pretrained, "--clip-weights", ENV_CLIP) or (DEFAULT_TAG, "the default")
    # the CLIP text encoder's tag / file / folder rules; its TextWeightsError is a WeightsNotFoundError
    source = clip_source(model, given, origin).source
    try:
        with offline_hub(force=False):
            net = open_clip.create_model(model, pretrained=source)
    except Exception as err:  # noqa: BLE001 - a failed download surfaces as many exception types
        raise WeightsNotFoundError(
            f"could not load CLIP {model} weights {source!r} ({type(err).__name__}: {str(err)[:200]}). "
            "CLIPSIM needs pretrained CLIP weights: on a machine with internet run once with this tag "
            "(open_clip caches them), or download open_clip_pytorch_model.bin for the model and pass "
            "it with --clip-weights PATH or $GAN_VIDEO_CLIP_WEIGHTS; leave clipsim out of --metrics to skip it") from None
    return net.eval().requires_grad_(False), open_clip.get_tokenizer(model)


def clip_frames(videos: torch.Tensor, size: int, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``[B, 3, T, H, W]`` in [-1, 1] -> CLIP-normalised ``[B * T, 3, size, size]``: short side resized
    bicubically (antialiased) to ``size``, centre crop, open_clip's mean and std."""
    b, c, t, h, w = videos.shape
    x = videos.transpose(1, 2).reshape(b * t, c, h, w).float().add(1).div(2)
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    top, left = (nh - size) // 2, (nw - size) // 2
    x = x[:, :, top:top + size, left:left + size]
    mean_t = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    return (x - mean_t) / std_t


class CLIPSimilarity(Metric):
    """Sum-state CLIPSIM: ``update(videos [B, 3, T, H, W] in [-1, 1], captions)``; ``compute()``
    returns the mean per-clip CLIPSIM (raw cosine, not x100)."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, model: Optional[nn.Module] = None, tokenizer=None, model_name: str = DEFAULT_MODEL,
                 pretrained: Optional[str] = None, **kwargs):
        super().__init__(**kwargs)
        if model is None:
            model, tokenizer = load_clip(model_name, pretrained)
        self.clip, self.tokenizer = model, tokenizer
        size = self.clip.visual.image_size
        self.size = size[0] if isinstance(size, (tuple, list)) else int(size)
        cfg = getattr(self.clip.visual, "preprocess_cfg", {}) or {}
        from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

        self.mean, self.std = cfg.get("mean", OPENAI_DATASET_MEAN), cfg.get("std", OPENAI_DATASET_STD)
        self.add_state("total", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    @torch.no_grad()
    def per_clip(self, videos: torch.Tensor, captions: Sequence[str]) -> torch.Tensor:
        """CLIPSIM of each clip ``[B]``."""
        if videos.shape[0] != len(captions):
            raise ValueError(f"{videos.shape[0]} clips but {len(captions)} captions")
        device = next(self.clip.parameters()).device
        b, t = videos.shape[0], videos.shape[2]
        image = F.normalize(self.clip.encode_image(clip_frames(videos.to(device), self.size, self.mean,
                                                               self.std)).float(), dim=-1)
        text = F.normalize(self.clip.encode_text(self.tokenizer(list(captions)).to(device)).float(), dim=-1)
        return (image.view(b, t, -1) * text[:, None]).sum(-1).mean(1)

    def update(self, videos: torch.Tensor, captions: Sequence[str]) -> None:
        sims = self.per_clip(videos, captions)
        self.total += sims.double().sum().to(self.total.device)
        self.count += sims.numel()

    def compute(self) -> torch.Tensor:
        return self.total / self.count
