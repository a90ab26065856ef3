"""Real video datasets (DESIGN.md section 4): caption files, class folders, folders of frames,
Weizmann-style frame strips and prepared shards, served as clips
``{"video": float32 [3, T, H, W] in [-1, 1], "caption": str, "index": int, "start": int}``.

The pipeline, one module per step (this package only re-exports their public names):

1. :mod:`.listing`: ``list_videos`` finds candidate videos and their captions (:class:`Entry`,
   :mod:`.entry`) for a layout:

   - ``captions``: a CSV or JSONL caption file of ``path, caption`` rows (optional ``start``/``end``
     seconds; WebVid / MSR-VTT style; several rows for one video give it several captions);
   - ``classes``: ``root/<class>/<video file>`` (UCF-101 / Kinetics style), the caption made from the
     class name (``playing_golf`` -> "playing golf", or ``class_captions``) through ``templates``
     (:mod:`.captions`);
   - ``frames``: folders of images, ``root/<video>/*.jpg|png`` or ``root/<class>/<video>/*.jpg|png``
     (sorted naturally: ``2.png`` before ``10.png``);
   - ``strips``: ``root/<class>/*.jpg``, each image one video stored as a horizontal strip of square
     frames (frame size = the image's height; the Weizmann layout);
   - ``shards``: frames pre-decoded by ``tools/prepare_dataset.py`` (see :mod:`gan_video.data.shards`).

2. :mod:`.probing`: ``scan`` probes each candidate once (container metadata, decoding only when the
   frame count is missing; results cached per file) and skips unusable ones, counted by reason
   (:class:`Skips`).

3. :mod:`.datasets`: :class:`VideoClips` samples T frames ``stride`` apart (read by :mod:`.decode`),
   resizes the short side (bilinear, antialiased), crops (random for training, centre for evaluation)
   and optionally flips. Every random choice is a function of ``(seed, i)`` where
   ``i = epoch * len + position`` comes from :class:`EpochIndexSampler`, so a resumed run sees the
   same clips. A file that fails to decode is reported once and replaced by another, deterministically
   chosen item.
"""
from .captions import CaptionMap, caption_variants, check_templates, class_caption, load_class_captions
from .datasets import EpochIndexSampler, PromptItems, RealClips, SparseBatch, VideoClips, fingerprint
from .decode import decode_video, fit_frames, iter_decoded, read_frames
from .entry import Entry, ReadError, Skips, Unusable
from .listing import FORMATS, VideoFormat, detect_format, list_videos, shard_entries
from .probing import scan

__all__ = ["SparseBatch", "CaptionMap", "caption_variants", "check_templates", "class_caption", "load_class_captions",
           "EpochIndexSampler", "PromptItems", "RealClips", "VideoClips", "fingerprint",
           "decode_video", "fit_frames", "iter_decoded", "read_frames",
           "Entry", "ReadError", "Skips", "Unusable",
           "FORMATS", "VideoFormat", "detect_format", "list_videos", "shard_entries", "scan"]
