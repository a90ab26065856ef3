"""The data module of real video datasets (caption files, class folders, frame folders, frame strips,
prepared shards): scans once, serves :class:`.video.VideoClips` for training and the validation
prompts; the readers and clip sampling are in :mod:`.video`, resumption and DataLoaders in
:mod:`.resumable`."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional, Union

from pytorch_lightning.utilities import rank_zero_only
from torch.utils.data import DataLoader

from .resumable import ResumableDataModule, data_loader
from .streaming import load_info
from .video import (FORMATS, VideoFormat, EpochIndexSampler, PromptItems, RealClips, SparseBatch, VideoClips,
                    check_templates,
                    detect_format, fingerprint, list_videos, load_class_captions)


@rank_zero_only
def _report(message: str) -> None:
    print(message, flush=True)


class VideoDataModule(ResumableDataModule):
    """Clips of real videos for training, fixed prompts for validation.

    Args:
        root: the dataset folder (class folders, frame folders, strips) or a prepared dataset (a
            folder or ``s3://bucket/prefix`` written by ``gan-video-prepare``); for a caption file,
            the folder its paths are relative to (default: the caption file's folder).
        format: ``auto`` (detected from ``root`` / ``caption_file``), ``captions``, ``classes``,
            ``frames``, ``strips`` or ``litdata`` (see :mod:`gan_video.data.video`).
        caption_file: CSV or JSONL of ``path, caption`` rows (optional ``start``, ``end`` seconds).
        class_captions: class folder name -> caption (or list of synonyms), as a dict or the path of
            a JSON file; classes without an entry use their folder name (``playing_golf`` ->
            "playing golf").
        templates: caption templates for class captions, each with one ``{}`` (e.g. ``"a video of
            {}"``); training draws one per clip, validation uses the first. Not used for caption files
            or shards (shards store the captions they were prepared with).
        classes: only these class folders (names compared ignoring case, ``_`` = space).
        resolution: frame size in pixels (the model's; 64 * 2^k).
        frames: clip length T.
        stride: frames skipped between clip frames + 1 (a clip spans ``(frames - 1) * stride + 1``
            frames; shorter videos are skipped).
        batch_size: clips per training batch.
        num_workers: DataLoader worker processes decoding clips (persistent across epochs).
        hflip: flip half the training clips horizontally.
        seed: seed of the clip order and of every clip's start, crop, flip and caption choice.
        val_prompts: validation prompts (default: the dataset's distinct canonical captions, at most
            ``max_val_prompts`` spread over the list).
        val_per_prompt: validation clips (seeds) per prompt.
        max_val_prompts: cap on the default validation prompts.
        clips_per_epoch: training clips per epoch (default: one per usable video); more makes small
            datasets' epochs longer (each video then gives several clips per epoch, other starts).
        scan_cache: cache each file's probe (frame count, fps) by size and mtime in
            ``$GAN_VIDEO_CACHE/video_scan``.
        verbose: print the one-line summary of usable and skipped videos at setup.
        sparse_frames: decode only this many frames of each training clip, at random clip positions
            shared by the batch, for a discriminator that reads no others (set it to
            ``model.discriminator.sparse_frames``; the module checks). 0 (default): every frame.
            Measured in docs/benchmarks.md (data loading).
    """

    def __init__(self, root: Optional[str] = None, format: VideoFormat = "auto", caption_file: Optional[str] = None,
                 class_captions: Union[dict[str, Union[str, list[str]]], str, None] = None,
                 templates: Optional[list[str]] = None, classes: Optional[list[str]] = None,
                 resolution: int = 64, frames: int = 16, stride: int = 1, batch_size: int = 16,
                 num_workers: int = 2, hflip: bool = False, seed: int = 0,
                 val_prompts: Optional[list[str]] = None, val_per_prompt: int = 1, max_val_prompts: int = 16,
                 clips_per_epoch: Optional[int] = None, scan_cache: bool = True, verbose: bool = True,
                 sparse_frames: int = 0):
        super().__init__()
        self.save_hyperparameters()
        if format not in FORMATS:
            raise ValueError(f"data.format {format!r} is unknown; choose one of {FORMATS}")
        if resolution < 8 or frames < 1 or stride < 1 or batch_size < 1:
            raise ValueError(f"resolution ({resolution}) must be >= 8 and frames ({frames}), stride "
                             f"({stride}) and batch_size ({batch_size}) >= 1")
        check_templates(templates)
        load_class_captions(class_captions)  # fail early on a missing or bad file
        if val_prompts is not None and not [p for p in val_prompts if p.strip()]:
            raise ValueError("data.val_prompts is empty; give prompts or leave it unset for the "
                             "dataset's captions")
        self._index = None

    # -- the scanned dataset, once per datamodule
    @property
    def span(self) -> int:
        """Frames a training clip covers: ``(frames - 1) * stride + 1``."""
        return (self.hparams.frames - 1) * self.hparams.stride + 1

    def index(self):
        """``(format, usable entries, skips)``, scanning the data on first use (prints the summary)."""
        if self._index is None:
            hp = self.hparams
            if hp.format == "shards" or (hp.format == "auto" and hp.root and not hp.caption_file
                                         and detect_format(hp.root, None) == "shards"):
                raise ValueError(f"{hp.root!r} holds .npy shards of an older gan_video, which training no longer "
                                 f"reads; convert them once: gan-video-prepare --format shards --root {hp.root} "
                                 f"--out {str(hp.root).rstrip('/')}_litdata --size <their size>, then train with "
                                 "data.root set to the new folder")
            self._index = list_videos(hp.format, hp.root, hp.caption_file, hp.class_captions, hp.templates,
                                      hp.classes, min_frames=self.span, cache=hp.scan_cache, progress=hp.verbose)
            fmt, entries, skips = self._index
            if fmt == "litdata":
                size = load_info(hp.root)["size"]
                if size < hp.resolution:
                    raise ValueError(f"the dataset prepared in {hp.root!r} holds {size}px frames, less than "
                                     f"data.resolution {hp.resolution}; prepare it again with "
                                     f"gan-video-prepare --size {hp.resolution}")
            if hp.verbose:
                _report(skips.summary(len(entries)) + f" ({fmt}, {self.span}-frame clips)")
        return self._index

    @property
    def entries(self):
        return self.index()[1]

    def setup(self, stage: Optional[str] = None) -> None:
        hp = self.hparams
        entries = self.entries
        if self.epoch_size < hp.batch_size:
            raise ValueError(f"only {self.epoch_size} clips per epoch ({len(entries)} usable videos), "
                             f"fewer than data.batch_size {hp.batch_size}; lower the batch size or set "
                             "data.clips_per_epoch")
        self.train_set = VideoClips(entries, hp.resolution, hp.frames, hp.stride, train=True,
                                    hflip=hp.hflip, seed=hp.seed, sparse=hp.sparse_frames)
        self.val_set = PromptItems(self.validation_prompts(), hp.val_per_prompt)

    @property
    def epoch_size(self) -> int:
        """Training clips per epoch: ``clips_per_epoch`` or the number of usable videos."""
        return self.hparams.clips_per_epoch or len(self.entries)

    def validation_prompts(self) -> list[str]:
        """``val_prompts``, or the distinct canonical captions spread over the dataset (capped)."""
        hp = self.hparams
        if hp.val_prompts is not None:
            return [p for p in hp.val_prompts if p.strip()]
        caps = list(dict.fromkeys(e.captions[0] for e in self.entries))
        if len(caps) > hp.max_val_prompts:
            caps = [caps[k * len(caps) // hp.max_val_prompts] for k in range(hp.max_val_prompts)]
        return caps

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        sampler = self.resumed(EpochIndexSampler(self.epoch_size, hp.seed))
        # the loader's own generator: worker processes draw no number from torch's global stream,
        # which a resumed run would otherwise draw at another point than an uninterrupted one
        return data_loader(self.train_set, hp.batch_size, sampler, hp.num_workers, seed=hp.seed,
                           collate_fn=SparseBatch(self.train_set) if hp.sparse_frames else None)

    # -- for metrics and text encoders
    def all_captions(self) -> list[str]:
        """Every distinct caption the dataset can give a training clip, plus the validation prompts."""
        caps = {c for e in self.entries for c in e.captions}
        return sorted(caps | set(self.validation_prompts()))

    def real_clips(self, frames: int, count: int, seed: int = 0, stride: int = 1) -> RealClips:
        """``count`` real clips of ``frames`` frames every ``stride`` frames (consecutive by default;
        uint8 ``[T, H, W, 3]`` at the datamodule's resolution, centre crop, no flip, fixed starts)
        for real-data statistics."""
        return RealClips(self.entries, self.hparams.resolution, frames, count, seed, stride)

    def dataset_id(self) -> str:
        """``<format>-<root name>-<resolution>px-<hash of the file list>``: a stable key for caches
        of real-data statistics."""
        hp = self.hparams
        fmt, entries, _ = self.index()
        where = hp.caption_file if fmt == "captions" else hp.root
        name = re.sub(r"[^A-Za-z0-9]+", "_", Path(str(where)).resolve().name).strip("_")[:32] or "data"
        base = hp.root or str(Path(hp.caption_file).resolve().parent)
        return f"{fmt}-{name}-{hp.resolution}px-{fingerprint(entries, base)}"
