"""Which words of a caption does the discriminator read? A diagnostic for text-conditioned training
on the built-in shapes.

Real clips are scored by D (every head, and the text-matching head when D has one: its similarity of
the clip's frames with the caption) with their canonical caption "a {colour} {shape} moving
{direction}" and with the same caption with one attribute swapped for another value; the table gives,
per attribute and head, the share of clips whose right caption scores higher, and the mean gap.
50% means D does not read that word; a generator cannot learn a word its discriminator ignores.

    python tools/probe_discriminator.py --checkpoint runs/shapes/checkpoints/last.ckpt
"""
import argparse
import json

import torch

from gan_video.data.shapes import ATTRIBUTE_VALUES, MovingShapes, canonical_prompt
from gan_video.module import load_model


@torch.no_grad()
def probe(model, clips: int = 128, seed: int = 4242, batch: int = 32) -> dict:
    hp = model.hparams
    ds = MovingShapes(clips, hp.resolution, hp.frames, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    wins = {a: {} for a in ATTRIBUTE_VALUES}
    gaps = {a: {} for a in ATTRIBUTE_VALUES}
    for start in range(0, clips, batch):
        idx = range(start, min(clips, start + batch))
        video = torch.stack([ds[i]["video"] for i in idx])
        meta = [ds.clip(i) for i in idx]
        attrs = [{"color": c.color, "shape": c.shape, "direction": c.direction} for c in meta]
        index = model.D.frame_index(video.shape[2], video.device)
        feat = model.D.features(video, index, None)

        def scores(captions):
            text = model.embed_text(model.text_d, captions)
            out = model.D.score(feat, text)
            if getattr(model.D, "matcher", None) is not None:       # the matching head: its own caption's logit
                logits = model.D.match_logits(video, text, index)      # [B * K, B]
                k = logits.shape[0] // len(captions)
                out["matching"] = logits.diagonal(0, 0, 1) if k == 1 else \
                    logits.view(len(captions), k, -1).diagonal(0, 0, 2).mean(0)
            return out

        right = scores([canonical_prompt(**a) for a in attrs])
        for name, values in ATTRIBUTE_VALUES.items():
            wrong_caps = []
            for a in attrs:
                other = [v for v in values if v != a[name]]
                wrong_caps.append(canonical_prompt(**{**a, name: other[int(torch.randint(len(other), (), generator=gen))]}))
            wrong = scores(wrong_caps)
            for head in right:
                wins[name].setdefault(head, []).append((right[head] > wrong[head]).float())
                gaps[name].setdefault(head, []).append(right[head] - wrong[head])
    return {name: {head: {"right_above_wrong": torch.cat(wins[name][head]).mean().item(),
                          "mean_gap": torch.cat(gaps[name][head]).mean().item()} for head in wins[name]}
            for name in wins}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, help="a training checkpoint (it holds D)")
    ap.add_argument("--clips", type=int, default=128)
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    res = probe(load_model(args.checkpoint), args.clips, args.seed)
    print(f"D's reading of each word, {args.clips} real clips (right caption scored above a one-attribute swap)")
    for name, heads in res.items():
        print(f"{name:10s} " + "   ".join(f"{h}: {100 * v['right_above_wrong']:5.1f}% (gap {v['mean_gap']:+.2f})"
                                        for h, v in heads.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == "__main__":
    main()
