"""Which cell of a watermark plane carries which bit, under which chip sign (gan_video.watermark).

The payload is :data:`NBITS` bits: :data:`NMAGIC` magic bits, which detection reads, then the model
id. The layout is drawn from the key, per plane and grid size, so that only the key's holder knows
it; the magic gets :data:`MAGIC_SHARE` of the cells, because the detection score grows with the
square root of the magic's cells (docs/provenance.md, Tried).
"""
from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

NBITS, NMAGIC = 32, 16
MAGIC_SHARE = 0.875             # the share of each plane's cells the 16 magic bits get; the 16 id bits get the rest


@lru_cache(maxsize=256)
def _layout(key: str, plane, gh: int, gw: int) -> tuple[np.ndarray, np.ndarray]:
    """Which bit each cell of a plane carries and its chip sign, both from the key: the 16 magic
    bits, which the score reads, get :data:`MAGIC_SHARE` of the cells, the 16 id bits the rest
    (the bits of a kind about as many cells each).

    Drawn as version 3 drew it (every bit the same number of cells), then all but the first few
    cells of each id bit handed to the magic bits, chips kept: a clip marked by version 2 or 3 still
    correlates on every magic cell it had, and reads at about 1/sqrt(1.75) of its score then."""
    seed = hashlib.sha256(f"{key}|{plane.name}|{plane.cell}|{gh}x{gw}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(seed[:8], "little"))
    n = gh * gw
    bits = (np.arange(n) % NBITS)[rng.permutation(n)]
    chips = rng.choice(np.array([-1.0, 1.0]), size=n)
    n_id = n - round(n * MAGIC_SHARE)
    nid = NBITS - NMAGIC
    keep = np.full(nid, n_id // nid) + np.isin(np.arange(nid), rng.permutation(nid)[:n_id % nid])
    handed = np.sort(np.concatenate([np.flatnonzero(bits == NMAGIC + b)[keep[b]:] for b in range(nid)]))
    bits[handed] = (np.arange(len(handed)) % NMAGIC)[rng.permutation(len(handed))]
    bits.flags.writeable = chips.flags.writeable = False
    return bits, chips
