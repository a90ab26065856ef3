"""GAN losses. Each takes the discriminator's ``{head: logits [B]}`` dicts and sums over heads."""
from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("hinge", "nonsaturating")


def _check(kind: str) -> None:
    if kind not in LOSSES:
        raise ValueError(f"unknown GAN loss {kind!r}; choose from {LOSSES}")


def d_real_term(logits: torch.Tensor, kind: str) -> torch.Tensor:
    return F.relu(1 - logits).mean() if kind == "hinge" else F.softplus(-logits).mean()


def d_fake_term(logits: torch.Tensor, kind: str) -> torch.Tensor:
    return F.relu(1 + logits).mean() if kind == "hinge" else F.softplus(logits).mean()


def discriminator_loss(real: dict, fake: dict, mismatched: dict | None, kind: str = "hinge",
                       mismatch_weight: float = 0.5) -> tuple[torch.Tensor, dict]:
    """Matching-aware discriminator loss (Reed et al. 2016, used by the 2018 T2V paper).

    Real clips with their own caption are "real"; generated clips and real clips paired with
    another clip's caption are "fake". The two fake terms share a weight of 1 between them:
    ``(1 - mismatch_weight) * fake + mismatch_weight * mismatched``.
    """
    _check(kind)
    total, logs = 0.0, {}
    for head in real:
        r, f = d_real_term(real[head], kind), d_fake_term(fake[head], kind)
        loss = r + (1 - mismatch_weight) * f if mismatched else r + f
        if mismatched:
            m = d_fake_term(mismatched[head], kind)
            loss = loss + mismatch_weight * m
            logs[f"d_{head}_mismatched"] = m.detach()
        logs[f"d_{head}_real"], logs[f"d_{head}_fake"] = r.detach(), f.detach()
        total = total + loss
    return total, logs


def generator_loss(fake: dict, kind: str = "hinge") -> tuple[torch.Tensor, dict]:
    _check(kind)
    total, logs = 0.0, {}
    for head, logits in fake.items():
        loss = -logits.mean() if kind == "hinge" else F.softplus(-logits).mean()
        logs[f"g_{head}"] = loss.detach()
        total = total + loss
    return total, logs


def r1_penalty(real_video: torch.Tensor, real_logits: dict) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): squared gradient norm of D's real logits w.r.t. the real input."""
    out = sum(v.sum() for v in real_logits.values())
    (grad,) = torch.autograd.grad(out, real_video, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def same_caption_mask(captions: list[str]) -> torch.Tensor:
    """``[B, B]`` bool: True where two clips of the batch have the same caption (never a negative)."""
    return torch.tensor([[a == b for b in captions] for a in captions])


def soft_hardest_mismatch(matrix: dict, captions: list[str], temperature: float = 1.0) -> dict | None:
    """Per real clip, the average of its wrong-caption scores weighted by a softmax over those scores
    (weights detached): early on, when D scores every caption alike, this is the mean over all of
    the batch's other captions; as D learns, the weight moves to the captions it still confuses
    with the right one (same colour, other shape or motion) without the collapse that the hard max
    causes at the start. Returns a per-clip score to feed the fake side of the loss."""
    same = same_caption_mask(captions)
    if same.all():
        return None
    # a row with no wrong caption would mean every caption is the same: excluded just above
    out = {}
    for head, m in matrix.items():
        mask = same.to(m.device)
        w = torch.softmax((m.detach() / temperature).masked_fill(mask, float("-inf")), dim=1)
        out[head] = (w * m.masked_fill(mask, 0.0)).sum(1)
    return out


def hardest_mismatch(matrix: dict, captions: list[str]) -> dict | None:
    """For each real clip, its highest score among the batch's *other* captions (VSE++'s hardest
    negative): once D knows colours, the hardest wrong caption differs in shape or motion, which is
    where the matching signal is needed. ``matrix``: ``{head: [B, B]}`` clip x caption scores."""
    same = same_caption_mask(captions)
    if same.all():
        return None
    # every row has a wrong caption (all-equal batches are excluded above), so the max is finite
    return {head: m.masked_fill(same.to(m.device), float("-inf")).max(1).values
            for head, m in matrix.items()}


def similar_caption_pairs(tokens: torch.Tensor, captions: list[str], generator=None) -> torch.Tensor | None:
    """For each caption, the index of the batch's *most similar different* caption (Jaccard overlap
    of token ids; ties broken at random). Text hard negatives that need no labels and no D scores:
    "a red circle moving left" is paired with "a red circle moving right" or "a red square moving
    left" when the batch has one, so D must read shape and motion words, not only colour."""
    n = len(captions)
    if len(set(captions)) < 2:
        return None
    sets = [set(t[t > 0].tolist()) for t in tokens.cpu()]
    sim = torch.tensor([[len(a & b) / max(1, len(a | b)) for b in sets] for a in sets])
    sim = sim + 1e-3 * torch.rand(n, n, generator=generator)      # random tie-breaks
    # same-caption pairs (the clip itself included) score -1, below any real overlap
    return sim.masked_fill(same_caption_mask(captions), -1.0).argmax(1)


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
