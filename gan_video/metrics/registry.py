"""Metrics by name, each printed with its protocol: what ``gan-video-evaluate`` and the
``EvaluationCallback`` call (the role of stylegan3's ``metric_main.py``).

Names:

- ``fvd<N>_<T>f``: FVD of N generated clips against N real clips of T consecutive frames (any N, T:
  ``fvd2048_16f`` is the standard, ``fvd2048_32f`` for our 32-frame clips, ``fvd256_16f`` cheaper);
  ``fvd<N>_<T>f_s<S>``: the real clips take every S-th frame, like training clips at ``stride: S``;
  ``..._w<K>``: the generated clips are made K + T frames long and frames K..K+T-1 are compared
  (does quality hold later in clips longer than the trained length?);
- ``clipsim``: CLIPSIM (GODIVA) of generated clips with their prompts, raw cosine;
- ``lpips_jitter``: LPIPS between consecutive generated frames;
- ``lpips_diversity``: mean pairwise LPIPS between seeds of one prompt (~0: mode collapse);
- ``align``: text alignment on the built-in shapes (the 2018 paper's classifier protocol).

An :class:`Evaluator` loads every network and the real statistics in :meth:`Evaluator.prepare`
(before any clip is made, so a missing weight fails in seconds), then :meth:`Evaluator.run` makes
the generated clips and returns :class:`Result` rows. Metrics that read clips generated from the
data's captions (FVD, CLIPSIM, jitter) share one pass of the generator; under DDP every rank makes
its share of the clips and the sums are reduced.
"""
from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import torch
from torch import nn

METRIC_NAMES = ("fvd<N>_<T>f", "clipsim", "lpips_jitter", "lpips_diversity", "align")


@dataclass
class Result:
    """One number with the protocol that made it."""
    metric: str
    value: Optional[float]
    protocol: str
    seconds: float = 0.0

    def as_dict(self) -> dict:
        d = asdict(self)
        d["value"] = None if self.value is None else round(float(self.value), 4)
        d["seconds"] = round(self.seconds, 1)
        return d


@dataclass
class EvalOptions:
    """Settings of the metrics (the defaults are the documented protocols)."""
    batch_size: int = 16
    progress: bool = True
    use_cache: bool = True                       # real FVD statistics from / to the cache
    i3d: Optional[str] = None                    # I3D weights file (default: search order)
    fvd_precision: str = "32"                    # "bf16": a bfloat16 I3D (GPUs, CPUs with AMX)
    fvd_extractor: Optional[nn.Module] = None    # replaces I3D (tests, other feature networks)
    fvd_features: int = 400
    fvd_floor: bool = False                      # also real vs other real clips (the floor)
    fvd_baselines: bool = False                  # the floor, a perfect still and shuffled frames
    clip_model: str = "ViT-B-32"
    clip_weights: Optional[str] = None
    clipsim_clips: int = 256
    lpips_net: str = "alex"
    lpips_trunk: Optional[str] = None
    jitter_clips: int = 256
    lpips_prompts: int = 16
    lpips_seeds: int = 4
    align_per_prompt: int = 4
    align_seed: int = 1000
    align_classifier: Optional[str] = None
    align_holdout: Optional[list] = None         # default: the data module's
    first_seed: int = 0                          # generated clip i (FVD, CLIPSIM, jitter) uses seed first_seed + i


@dataclass
class Context:
    """What metrics read: the data module, the device, the DDP rank, the options, shared networks."""
    datamodule: object
    device: torch.device
    options: EvalOptions
    rank: int = 0
    world: int = 1
    barrier: Callable[[], None] = lambda: None
    nets: dict = field(default_factory=dict)
    done: set = field(default_factory=set)      # work shared by several metrics, done once

    def net(self, key: str, build: Callable[[], nn.Module]) -> nn.Module:
        if key not in self.nets:
            self.nets[key] = build().to(self.device)
        return self.nets[key]

    def progress(self, iterable, total: int, desc: str):
        from .fvd import _progress

        return _progress(iterable, total, desc, self.options.progress and self.rank == 0)

    def all_sum(self, *values: float) -> list[float]:
        """Sums over DDP ranks (the values themselves on one process)."""
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.world > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(t)
        return t.tolist()


# ------------------------------------------------------------------------------------ metrics
class StreamMetric:
    """A metric of clips generated from the data's captions (one shared generator pass)."""
    name: str
    wants: int                     # generated clips it reads
    frames: int = 0                # clip length it needs (0: the model's)

    def prepare(self, ctx: Context) -> None: ...
    def captions(self) -> Optional[list[str]]:   # the captions it must be generated from, if any
        return None
    def reset(self) -> None: ...
    def update(self, video: torch.Tensor, prompts: list[str]) -> None: ...
    def results(self, ctx: Context) -> list[Result]: ...


class FVD(StreamMetric):
    def __init__(self, name: str):
        from .fvd import FVDProtocol

        self.protocol = FVDProtocol.parse(name)
        self.name, self.wants = name, self.protocol.num_fake
        self.frames = self.protocol.offset + self.protocol.frames     # the clip length it needs

    def prepare(self, ctx: Context) -> None:
        from .fvd import FrechetVideoDistance, accumulate_real, load_i3d_features, real_stats_file

        dm, opt = ctx.datamodule, ctx.options
        if dm is None or not hasattr(dm, "real_clips"):
            raise ValueError(f"{self.name} needs a data module with real_clips() (ShapesDataModule, "
                             "VideoDataModule) for its real side")
        extractor = opt.fvd_extractor if opt.fvd_extractor is not None else \
            ctx.net("i3d", lambda: load_i3d_features(opt.i3d, precision=opt.fvd_precision))
        self.metric = FrechetVideoDistance(extractor, opt.fvd_features).to(ctx.device)
        net_name = getattr(extractor, "name", type(extractor).__name__)
        self.cached = opt.use_cache and real_stats_file(dm.dataset_id(), self.protocol, net_name).is_file()
        t0 = time.time()
        if ctx.world > 1 and opt.use_cache:   # rank 0 computes and caches the real side first
            if ctx.rank == 0:
                accumulate_real(self.metric, dm, self.protocol, opt.batch_size, True, False)
            ctx.barrier()
        self._captions = accumulate_real(self.metric, dm, self.protocol, opt.batch_size, opt.use_cache,
                                         opt.progress and ctx.rank == 0)
        self.real_seconds = time.time() - t0

    def captions(self) -> list[str]:
        return self._captions

    def reset(self) -> None:
        self.metric.reset()       # the real side stays fixed; the summed state holds generated clips
        self.t0 = time.time()

    def update(self, video: torch.Tensor, prompts: list[str]) -> None:
        self.metric.update(video[:, :, self.protocol.offset:self.frames], real=False)

    def results(self, ctx: Context) -> list[Result]:
        real = "from cache" if self.cached else f"{self.real_seconds:.0f} s"
        seeds = f"; generated seeds start at {ctx.options.first_seed}" if ctx.options.first_seed else ""
        out = [Result(self.name, float(self.metric.compute()),
                      f"{self.protocol.describe()}{seeds}; real side {real}", time.time() - self.t0)]
        if ctx.options.fvd_floor or ctx.options.fvd_baselines:
            out += self.baselines(ctx, full=ctx.options.fvd_baselines)
        return out

    def baselines(self, ctx: Context, full: bool) -> list[Result]:
        """FVD of the same real statistics against as many *other* real clips: as they are (the
        floor: what a perfect generator would score at this count) and, with ``full``, with their
        first frame repeated (a perfect still: no motion at all) and with their frames in a random
        order (perfect frames, broken motion). One pass over the other clips feeds all three."""
        from .fvd import FrechetVideoDistance, FVDProtocol, real_clip_batches

        t0, p = time.time(), self.protocol
        kinds = ["real-vs-real", "still", "shuffled"] if full else ["real-vs-real"]
        # windows (_w<K>) of one protocol share its real statistics, hence its baselines: measured
        # once per evaluation, printed once
        key = ("fvd-baselines", p.num_real, p.num_fake, p.frames, p.size, p.seed, p.stride, full)
        if key in ctx.done:
            return []
        ctx.done.add(key)
        metrics = {}
        for kind in kinds:
            metrics[kind] = FrechetVideoDistance(self.metric.extractor, ctx.options.fvd_features).to(ctx.device)
            metrics[kind].set_real_statistics(self.metric.real_statistics())
        other = FVDProtocol(p.num_fake, p.num_fake, p.frames, p.size, seed=p.seed + 1, stride=p.stride)
        loader, total = real_clip_batches(ctx.datamodule, other, ctx.options.batch_size)
        gen = torch.Generator().manual_seed(p.seed)
        for batch in ctx.progress(loader, total, f"{p.name} baselines ({', '.join(kinds)})"):
            video = batch["video"]                                    # uint8 [B, T, H, W, 3]
            metrics["real-vs-real"].update(video, real=False)
            if full:
                metrics["still"].update(video[:, :1].expand_as(video).contiguous(), real=False)
                order = torch.stack([torch.randperm(video.shape[1], generator=gen) for _ in range(len(video))])
                shuffled = video[torch.arange(len(video))[:, None], order]
                metrics["shuffled"].update(shuffled, real=False)
        what = {"real-vs-real": f"floor: the same real statistics vs {p.num_fake} other real clips "
                                f"(real_clips seed {other.seed})",
                "still": f"the same real statistics vs those {p.num_fake} other real clips' first frame "
                         f"repeated {p.frames} times (a perfect still image: no motion)",
                "shuffled": f"the same real statistics vs those {p.num_fake} other real clips with their "
                            "frames in a random order (perfect frames, broken motion)"}
        seconds = (time.time() - t0) / len(kinds)
        return [Result(f"{p.name} {k}", float(metrics[k].compute()), what[k], seconds) for k in kinds]


class CLIPSim(StreamMetric):
    name = "clipsim"

    def prepare(self, ctx: Context) -> None:
        from .clipsim import CLIPSimilarity

        opt = ctx.options
        self.wants = opt.clipsim_clips
        self.metric = CLIPSimilarity(model_name=opt.clip_model, pretrained=opt.clip_weights).to(ctx.device)

    def reset(self) -> None:
        self.metric.reset()
        self.t0 = time.time()

    def update(self, video: torch.Tensor, prompts: list[str]) -> None:
        self.metric.update(video, prompts)

    def results(self, ctx: Context) -> list[Result]:
        opt = ctx.options
        return [Result("clipsim", float(self.metric.compute()), f"CLIP {opt.clip_model} "
                       f"({opt.clip_weights or 'default weights'}); mean over frames of cos(image, text), mean "
                       f"over {int(self.metric.count)} generated clips; raw cosine, not x100", time.time() - self.t0)]


def _lpips(ctx: Context):
    from .perceptual import VideoLPIPS

    return ctx.net(f"lpips-{ctx.options.lpips_net}", lambda: VideoLPIPS(ctx.options.lpips_net, ctx.options.lpips_trunk))


class LPIPSJitter(StreamMetric):
    name = "lpips_jitter"

    def prepare(self, ctx: Context) -> None:
        self.lpips, self.wants = _lpips(ctx), ctx.options.jitter_clips

    def reset(self) -> None:
        self.total, self.count, self.t0 = 0.0, 0, time.time()

    def update(self, video: torch.Tensor, prompts: list[str]) -> None:
        self.total += self.lpips.jitter(video) * video.shape[0]    # every clip has T - 1 frame pairs
        self.count += video.shape[0]

    def results(self, ctx: Context) -> list[Result]:
        total, count = ctx.all_sum(self.total, self.count)
        return [Result("lpips_jitter", total / max(count, 1), f"LPIPS-{ctx.options.lpips_net} between "
                       f"consecutive frames, mean over {int(count)} generated clips", time.time() - self.t0)]


class RunMetric:
    """A metric that makes its own clips."""
    name: str

    def prepare(self, ctx: Context) -> None: ...
    def run(self, model, ctx: Context) -> list[Result]: ...


class LPIPSDiversity(RunMetric):
    name = "lpips_diversity"

    def prepare(self, ctx: Context) -> None:
        self.lpips = _lpips(ctx)
        captions = list(dict.fromkeys(_all_captions(ctx.datamodule)))
        n = ctx.options.lpips_prompts
        if len(captions) > n:   # an even spread over the caption list
            captions = [captions[i * len(captions) // n] for i in range(n)]
        self.captions = captions

    def run(self, model, ctx: Context) -> list[Result]:
        t0, opt = time.time(), ctx.options
        mine = self.captions[ctx.rank::ctx.world]
        seeds = [100_000 + k for k in range(opt.lpips_seeds)]
        values = [self.lpips.diversity([model.generate([c] * len(seeds), seeds, batch_size=opt.batch_size)
                                        .to(ctx.device)]) for c in mine]
        total, count = ctx.all_sum(sum(values), len(values))
        return [Result("lpips_diversity", total / max(count, 1), f"LPIPS-{opt.lpips_net}, mean pairwise "
                       f"distance between {opt.lpips_seeds} clips (seeds) of each of {int(count)} prompts, "
                       "same frame index; ~0 = mode collapse", time.time() - t0)]


class Align(RunMetric):
    name = "align"

    def prepare(self, ctx: Context) -> None:
        from .alignment import load_classifier

        dm, opt = ctx.datamodule, ctx.options
        self.holdout = opt.align_holdout if opt.align_holdout is not None else getattr(dm, "holdout", None)
        if self.holdout is None:
            raise ValueError("text alignment (align) needs the built-in shapes data (its attribute "
                             "classifier); the data module here is not ShapesDataModule")
        self.res, self.frames = int(dm.hparams.resolution), int(dm.hparams.frames)
        self.classifier, self.real_accuracy = load_classifier(self.res, self.frames, opt.align_classifier)

    def run(self, model, ctx: Context) -> list[Result]:
        from .alignment import text_alignment

        t0, opt = time.time(), ctx.options
        r = text_alignment(model, self.classifier, self.holdout, opt.align_per_prompt, opt.align_seed,
                           opt.batch_size, ctx.rank, ctx.world)
        self.report = {**r, "classifier_accuracy_on_real": self.real_accuracy}
        proto = (f"2018 classifier protocol, {r['clips']} clips, {opt.align_per_prompt} per prompt; share of "
                 "clips whose attribute matches the prompt")
        return [Result(f"align/{k}", v, proto, time.time() - t0) for k, v in r["accuracy"].items()]


def _all_captions(dm) -> list[str]:
    return list(dm.all_captions()) if dm is not None and hasattr(dm, "all_captions") else ["a video"]


def build_metric(name: str):
    """The metric object for ``name`` (see the module docstring for the names)."""
    if re.fullmatch(r"fvd\d+_\d+f(_s\d+)?(_w\d+)?", name):
        return FVD(name)
    known = {"clipsim": CLIPSim, "lpips_jitter": LPIPSJitter, "lpips_diversity": LPIPSDiversity, "align": Align}
    if name not in known:
        raise ValueError(f"unknown metric {name!r}; choose from {', '.join(METRIC_NAMES)} "
                         "(e.g. fvd2048_16f, fvd256_16f)")
    return known[name]()


# ------------------------------------------------------------------------------------ evaluator
class Evaluator:
    """Runs a list of metrics by name on a model (see the module docstring).

    Args:
        names: metric names, in the order of the results.
        options: their settings.
        optional: names to drop with a note (instead of failing) when their weights cannot be found.
    """

    def __init__(self, names: list[str], options: Optional[EvalOptions] = None, optional: tuple = ()):
        if not names:
            raise ValueError(f"no metric given; choose from {', '.join(METRIC_NAMES)}")
        self.options = options or EvalOptions()
        self.metrics = [build_metric(n) for n in dict.fromkeys(names)]
        self.optional, self.notes, self.ctx = set(optional), [], None

    def prepare(self, datamodule, device, rank: int = 0, world: int = 1, barrier=lambda: None) -> None:
        """Load every network and the real statistics (before any clip is made)."""
        from ..weights import WeightsNotFoundError

        self.ctx = Context(datamodule, torch.device(device), self.options, rank, world, barrier)
        kept = []
        for m in self.metrics:
            try:
                m.prepare(self.ctx)
                kept.append(m)
            except WeightsNotFoundError as err:
                if m.name not in self.optional:
                    raise
                self.notes.append(f"{m.name} skipped: {err}")
        self.metrics = kept

    @torch.no_grad()
    def run(self, model) -> list[Result]:
        """Every metric of ``model`` (``generate(prompts, seeds, frames=...)``; its EMA generator)."""
        if self.ctx is None:
            raise RuntimeError("Evaluator.prepare() must run before run()")
        stream = [m for m in self.metrics if isinstance(m, StreamMetric)]
        for m in stream:
            m.reset()
        self._generate(model, stream)
        results = []
        for m in self.metrics:
            results += m.results(self.ctx) if isinstance(m, StreamMetric) else m.run(model, self.ctx)
        return results

    def _generate(self, model, stream: list) -> None:
        """One pass of the generator over the data's captions for every stream metric. A metric tied
        to its own caption list (FVD: its real clips' captions) gets a pass of its own when another
        metric's list differs; clip ``i`` is made from caption ``i`` (cycled) with seed ``first_seed + i``."""
        groups: dict[tuple, list] = {}
        # metrics tied to a caption list first, so the others join the first such pass
        for m in sorted(stream, key=lambda m: not m.captions()):
            key = tuple(m.captions() or ())
            owner = next((k for k in groups if k == key or not key), key)
            groups.setdefault(owner, []).append(m)
        ctx, frames_model = self.ctx, int(model.hparams.frames)
        for captions, metrics in groups.items():
            captions = list(captions) or _all_captions(ctx.datamodule)
            n = max(m.wants for m in metrics)
            frames = max([frames_model] + [m.frames for m in metrics])
            mine = list(range(ctx.rank, n, ctx.world))
            steps = range(0, len(mine), self.options.batch_size)
            desc = ", ".join(m.name for m in metrics) + " generated clips"
            for start in ctx.progress(steps, len(steps), desc):
                ids = mine[start:start + self.options.batch_size]
                prompts = [captions[i % len(captions)] for i in ids]
                seeds = [self.options.first_seed + i for i in ids]
                video = model.generate(prompts, seeds, ema=True, frames=frames,
                                       batch_size=self.options.batch_size).to(ctx.device)
                for m in metrics:
                    keep = sum(i < m.wants for i in ids)
                    if keep:   # each metric reads the clip length it asked for (0: the model's)
                        m.update(video[:keep, :, :m.frames or frames_model], prompts[:keep])
