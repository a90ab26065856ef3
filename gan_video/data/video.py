"""Real video datasets (DESIGN.md section 4): caption files, class folders, folders of frames,
Weizmann-style frame strips and prepared shards, served as clips
``{"video": float32 [3, T, H, W] in [-1, 1], "caption": str, "index": int, "start": int}``.

The pipeline:

1. ``list_videos`` finds candidate videos and their captions (:class:`Entry`) for a layout:

   - ``captions``: a CSV or JSONL caption file of ``path, caption`` rows (optional ``start``/``end``
     seconds; WebVid / MSR-VTT style; several rows for one video give it several captions);
   - ``classes``: ``root/<class>/<video file>`` (UCF-101 / Kinetics style), the caption made from the
     class name (``playing_golf`` -> "playing golf", or ``class_captions``) through ``templates``;
   - ``frames``: folders of images, ``root/<video>/*.jpg|png`` or ``root/<class>/<video>/*.jpg|png``
     (sorted naturally: ``2.png`` before ``10.png``);
   - ``strips``: ``root/<class>/*.jpg``, each image one video stored as a horizontal strip of square
     frames (frame size = the image's height; the Weizmann layout);
   - ``shards``: frames pre-decoded by ``tools/prepare_dataset.py`` (see :mod:`.shards`).

2. ``scan`` probes each candidate once (container metadata, decoding only when the frame count is
   missing; results cached per file) and skips unusable ones, counted by reason (:class:`Skips`).

3. :class:`VideoClips` samples T frames ``stride`` apart, resizes the short side (bilinear,
   antialiased), crops (random for training, centre for evaluation) and optionally flips. Every
   random choice is a function of ``(seed, i)`` where ``i = epoch * len + position`` comes from
   :class:`EpochIndexSampler`, so a resumed run sees the same clips. A file that fails to decode is
   reported once and replaced by another, deterministically chosen item.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import math
import os
import re
import warnings
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .datamodule import EpochShuffle

VIDEO_EXTS = frozenset(".mp4 .m4v .mov .avi .mkv .webm .mpg .mpeg .flv .wmv .ogv .3gp .ts .gif".split())
IMAGE_EXTS = frozenset(".jpg .jpeg .png .bmp .webp".split())
FORMATS = ("auto", "captions", "classes", "frames", "strips", "shards")
# container signatures: a file that starts like a video container but cannot be opened was cut short
_HEADERS = (b"\x1a\x45\xdf\xa3", b"RIFF", b"\x00\x00\x01\xba", b"FLV", b"GIF8")

CaptionMap = Union[dict, str, None]


# ---------------------------------------------------------------------------------------------- index
@dataclass
class Entry:
    """One usable (or candidate) video: a file, a folder of frames, a strip image or a shard range."""
    path: str                    # video file, frame folder, strip image, or shard .npy
    kind: str                    # video | frames | strip | shard
    captions: tuple[str, ...]    # variants: training draws one, evaluation uses the first
    label: str = ""              # class folder name, if any
    start: Optional[float] = None  # segment of a video file, in seconds
    end: Optional[float] = None
    first: int = 0               # index of the segment's first frame in the file (shards: offset)
    frames: int = 0              # frames in the segment (known after the scan)
    fps: float = 0.0
    source: str = ""             # where a shard's frames came from (for reports)

    @property
    def name(self) -> str:
        """``parent/file``: short enough for reports, long enough to find the file."""
        p = Path(self.source or self.path)
        return f"{p.parent.name}/{p.name}" if p.parent.name else p.name


@dataclass
class Skips:
    """Unusable inputs counted by reason, with the first few names for each reason."""
    counts: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=lambda: defaultdict(list))

    def add(self, reason: str, name: str) -> None:
        self.counts[reason] += 1
        if len(self.examples[reason]) < 3 and name not in self.examples[reason]:
            self.examples[reason].append(name)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def describe(self) -> str:
        parts = []
        for reason, n in self.counts.most_common():
            names = ", ".join(self.examples[reason]) + (", ..." if n > 3 else "")
            parts.append(f"{n} {reason} ({names})")
        return ", ".join(parts)

    def summary(self, usable: int) -> str:
        """``video data: 120 usable, skipped 3: 1 zero-byte (a/x.mp4), 2 corrupt (...)``."""
        if not self.total:
            return f"video data: {usable} usable, none skipped"
        return f"video data: {usable} usable, skipped {self.total}: {self.describe()}"


class Unusable(Exception):
    """A candidate that cannot be used; ``reason`` is the short label counted in the summary."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class ReadError(RuntimeError):
    """A video that passed the scan but failed to decode a clip."""


# --------------------------------------------------------------------------------------- captions
def _norm(name: str) -> str:
    return " ".join(name.replace("_", " ").split()).lower()


def class_caption(name: str) -> Optional[str]:
    """A caption from a class folder name: ``playing_golf`` / ``PlayingGolf`` -> "playing golf";
    None for names without letters (``0``), which need ``class_captions``."""
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name.replace("_", " ").replace("-", " "))
    words = " ".join(words.split()).lower()
    return words if re.search(r"[a-z]", words) else None


def load_class_captions(spec: CaptionMap) -> dict[str, list[str]]:
    """``class_captions`` as ``{normalised class name: [caption, synonyms...]}``; ``spec`` is a dict
    (values a caption or a list of synonyms) or the path of a JSON file holding one."""
    if spec is None:
        return {}
    if isinstance(spec, (str, os.PathLike)):
        path = Path(spec)
        if not path.is_file() and not path.is_absolute():  # a repo-relative path, from anywhere
            path = Path(__file__).resolve().parents[2] / spec
        if not path.is_file():
            raise FileNotFoundError(f"class_captions file {str(spec)!r} does not exist; pass a JSON "
                                    "file mapping class folder names to captions, or a dict")
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise ValueError(f"class_captions file {str(path)!r} is not valid UTF-8 JSON ({err}); "
                             'write it as {"folder name": "caption", ...}') from None
    if not isinstance(spec, dict):
        raise ValueError("class_captions must map class folder names to captions, e.g. "
                         '{"0": "a person waving one hand"}')
    out = {}
    for key, value in spec.items():
        caps = [value] if isinstance(value, str) else list(value or [])
        caps = [" ".join(str(c).split()) for c in caps]
        if not caps or not all(caps):
            raise ValueError(f"class_captions[{key!r}] has an empty caption; give it a non-empty "
                             "caption or a list of them")
        out[_norm(str(key))] = caps
    return out


def check_templates(templates: Optional[Sequence[str]]) -> tuple[str, ...]:
    """Caption templates for class names, each with one ``{}`` (default: the class caption alone)."""
    templates = tuple(templates or ("{}",))
    for t in templates:
        if not isinstance(t, str) or t.count("{}") != 1:
            raise ValueError(f"caption template {t!r} must contain '{{}}' exactly once, where the "
                             "class caption goes, e.g. 'a video of {}'")
    return templates


def caption_variants(label: str, class_captions: dict, templates: Sequence[str]) -> Optional[tuple]:
    """Every caption a video of class ``label`` may get (first = the canonical one), or None."""
    base = class_captions.get(_norm(label)) or ([class_caption(label)] if class_caption(label) else None)
    if not base:
        return None
    return tuple(dict.fromkeys(t.format(c) for c in base for t in templates))


# ---------------------------------------------------------------------------------------- listing
def _visible(folder: Path) -> list[Path]:
    try:
        return sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=_natural)
    except OSError as err:
        raise FileNotFoundError(f"cannot list {str(folder)!r} ({err.strerror}); check data.root") from None


def _natural(p: Union[Path, str]) -> list:
    name = p.name if isinstance(p, Path) else p
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


@functools.lru_cache(maxsize=4096)
def list_images(folder: str) -> tuple[str, ...]:
    """The image files of a frame folder, in natural order (``2.png`` before ``10.png``)."""
    names = [n for n in os.listdir(folder) if not n.startswith(".") and Path(n).suffix.lower() in IMAGE_EXTS]
    return tuple(os.path.join(folder, n) for n in sorted(names, key=_natural))


def _looks_like_strip(image: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(image) as im:
            w, h = im.size
    except (OSError, SyntaxError, ValueError):
        return False
    return h > 0 and w % h == 0 and w >= 2 * h


def detect_format(root: Optional[str], caption_file: Optional[str]) -> str:
    """The layout of ``root``: ``captions`` when a caption file is given, ``shards`` for a folder with
    ``index.json``, else from what the first non-empty subfolder holds."""
    if caption_file:
        return "captions"
    if not root:
        raise ValueError("data.root is not set; point it at the dataset folder (or set "
                         "data.caption_file for a caption-file dataset)")
    rootp = Path(root)
    if not rootp.is_dir():
        raise FileNotFoundError(f"data root {root!r} is not a folder; download or prepare the dataset "
                                "there, or set data.root to where it is")
    if (rootp / "index.json").is_file():
        return "shards"
    for sub in (p for p in _visible(rootp) if p.is_dir()):
        children = _visible(sub)
        if any(c.suffix.lower() in VIDEO_EXTS for c in children):
            return "classes"
        images = [c for c in children if c.suffix.lower() in IMAGE_EXTS]
        if images:
            return "strips" if _looks_like_strip(images[0]) else "frames"
        if any(c.is_dir() and list_images(str(c)) for c in children[:5]):
            return "frames"
    raise ValueError(f"cannot tell the layout of {root!r}: expected class folders of videos "
                     "(root/<class>/*.mp4), folders of frames (root/<video>/*.jpg), frame strips "
                     "(root/<class>/*.jpg) or prepared shards (root/index.json); set data.format, or "
                     "data.caption_file for a caption file")


def list_class_folders(root: str, layout: str, class_captions: dict, templates: Sequence[str],
                       classes: Optional[Sequence[str]], skips: Skips) -> list[Entry]:
    """Candidates of the ``classes``, ``frames`` and ``strips`` layouts (see the module docstring)."""
    rootp = Path(root)
    if not rootp.is_dir():
        raise FileNotFoundError(f"data root {root!r} is not a folder; download the dataset there "
                                "(see the config's comments for the layout) or set data.root")
    folders = [p for p in _visible(rootp) if p.is_dir()]
    if classes:
        by_name = {_norm(p.name): p for p in folders}
        missing = [c for c in classes if _norm(c) not in by_name]
        if missing:
            raise ValueError(f"classes {missing} have no folder under {root!r} (found: "
                             f"{sorted(p.name for p in folders)[:20]}); fix data.classes or the folder names")
        folders = [by_name[_norm(c)] for c in classes]
    entries = []
    for folder in folders:
        children = _visible(folder)
        images = [c for c in children if c.suffix.lower() in IMAGE_EXTS]
        if layout == "frames" and images:          # root/<video>/*.jpg: the folder is one video
            items, label = [(folder, "frames")], folder.name
        else:
            items, label = [], folder.name
            for c in children:
                ext = c.suffix.lower()
                if c.is_dir():
                    items.append((c, "frames"))
                elif ext in VIDEO_EXTS:
                    items.append((c, "video"))
                elif ext in IMAGE_EXTS:
                    items.append((c, "strip"))
        if not items:  # in the frames layout the folder may be a video without frames
            skips.add("no frames" if layout == "frames" else "empty class folder", folder.name + "/")
            continue
        caps = caption_variants(label, class_captions, templates)
        if caps is None:
            skips.add("class without caption", folder.name + "/")
            continue
        entries += [Entry(str(p), kind, caps, label=label) for p, kind in items]
    return entries


_PATH_KEYS = ("path", "video", "file", "filename", "video_path", "clip")
_CAPTION_KEYS = ("caption", "text", "name", "title", "sentence", "description")


def _pick(row: dict, keys: Sequence[str]):
    for k in keys:
        if row.get(k) not in (None, ""):
            return row[k]
    return None


def read_caption_rows(caption_file: str) -> list[tuple[int, dict]]:
    """``(line number, row dict with lower-case keys)`` of a CSV (with a header row), JSONL or JSON
    list. The text is decoded as UTF-8 keeping undecodable bytes as surrogates, so a bad caption
    skips its row instead of failing the file."""
    path = Path(caption_file)
    if not path.is_file():
        raise FileNotFoundError(f"caption file {caption_file!r} does not exist; set data.caption_file "
                                "to a CSV or JSONL of path,caption rows")
    text = path.read_bytes().decode("utf-8-sig", errors="surrogateescape")
    rows = []
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        stripped = text.lstrip()
        if stripped.startswith("["):
            try:
                items = json.loads(stripped)
            except ValueError as err:
                raise ValueError(f"caption file {caption_file!r} is not valid JSON ({err})") from None
            rows = [(i + 1, r) for i, r in enumerate(items)]
        else:
            for i, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        rows.append((i, json.loads(line)))
                    except ValueError:
                        rows.append((i, None))
    else:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if not reader.fieldnames or not {f.strip().lower() for f in reader.fieldnames} & set(_PATH_KEYS):
            raise ValueError(f"caption file {caption_file!r} needs a header row with a path column "
                             f"(one of {_PATH_KEYS}) and a caption column (one of {_CAPTION_KEYS})")
        rows = [(reader.line_num, r) for r in reader]
    return [(n, {str(k).strip().lower(): v for k, v in r.items() if k is not None}
             if isinstance(r, dict) else None) for n, r in rows]


def _seconds(value) -> Optional[float]:
    if value in (None, ""):
        return None
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise ValueError(value)
    return v


def list_caption_file(caption_file: str, root: Optional[str], skips: Skips) -> list[Entry]:
    """Candidates of a caption file; paths are relative to ``root`` (default: the file's folder).
    Rows of one (path, start, end) are merged into one video with several captions."""
    base = Path(root) if root else Path(caption_file).resolve().parent
    groups: dict[tuple, Entry] = {}
    for line, row in read_caption_rows(caption_file):
        where = f"line {line}"
        rel = _pick(row, _PATH_KEYS) if row else None
        if rel is None:
            skips.add("bad caption-file row", where)
            continue
        caption = _pick(row, _CAPTION_KEYS)
        caption = " ".join(str(caption).split()) if caption is not None else ""
        if re.search("[\udc80-\udcff]", caption):
            skips.add("non-UTF-8 caption", where)
            continue
        if not caption:
            skips.add("empty caption", where)
            continue
        try:
            start = _seconds(_pick(row, ("start", "start_time", "start_sec", "begin")))
            end = _seconds(_pick(row, ("end", "end_time", "end_sec", "stop")))
            if start is not None and end is not None and end <= start:
                raise ValueError
        except (TypeError, ValueError):
            skips.add("bad start/end", where)
            continue
        path = base / str(rel)
        if not path.exists():
            skips.add("missing file", str(rel))
            continue
        key = (str(path), start, end)
        if key not in groups:
            kind = "frames" if path.is_dir() else "strip" if path.suffix.lower() in IMAGE_EXTS else "video"
            groups[key] = Entry(str(path), kind, (), start=start, end=end)
        e = groups[key]
        if caption not in e.captions:
            e.captions += (caption,)
    return list(groups.values())


# ----------------------------------------------------------------------------------------- probing
def _open_failure(path: str, err: Exception) -> Unusable:
    with open(path, "rb") as f:
        head = f.read(12)
    known = head[4:8] == b"ftyp" or head.startswith(_HEADERS)
    return Unusable("truncated" if known else "corrupt", str(err))


def probe_video(path: str) -> tuple[int, float]:
    """``(frame count, fps)`` of a video file from its container metadata; decodes the first frame
    (proves the codec works) and all of them only when the container gives no count."""
    import av

    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise _open_failure(path, err) from None
    with container:
        if not container.streams.video:
            raise Unusable("no video stream")
        s = container.streams.video[0]
        if s.codec_context is None:
            raise Unusable("unreadable codec", "no decoder for this stream's codec")
        fps = float(s.average_rate or s.guessed_rate or s.base_rate or 0)
        if not fps > 0:
            raise Unusable("unknown frame rate")
        n = int(s.frames or 0)
        if not n:
            seconds = float(s.duration * s.time_base) if s.duration else (container.duration or 0) / 1e6
            n = int(round(seconds * fps))
        try:
            frames = container.decode(s)
            if next(frames, None) is None:
                raise Unusable("no decodable frames")
            if not n:
                n = 1 + sum(1 for _ in frames)
        except av.error.DecoderNotFoundError as err:
            raise Unusable("unreadable codec", str(err)) from None
        except (av.error.FFmpegError, ValueError) as err:
            raise Unusable("corrupt", str(err)) from None
    return n, fps


def probe(entry: Entry) -> tuple[int, float]:
    """``(frames in the whole file, fps)`` of a candidate, or :class:`Unusable`."""
    if entry.kind == "frames":
        n = len(list_images(entry.path))
        if not n:
            raise Unusable("no frames", "folder has no .jpg/.png images")
        return n, 0.0
    if os.path.getsize(entry.path) == 0:
        raise Unusable("zero-byte")
    if entry.kind == "strip":
        w, h = _read_image(entry.path).shape[1::-1]
        if w % h or w < h:
            raise Unusable("not a frame strip", f"width {w} is not a multiple of height {h}")
        return w // h, 0.0
    return probe_video(entry.path)


def _read_image(path: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as err:
        raise Unusable("truncated" if "truncated" in str(err) else "corrupt", str(err)) from None


def cache_root() -> Path:
    """The project's cache folder (``$GAN_VIDEO_CACHE``, else ``$XDG_CACHE_HOME/gan_video``, else
    ``~/.cache/gan_video``), the one every other cache uses."""
    from ..metrics.alignment import cache_dir

    return cache_dir()


def _scan_cache_path(source: str) -> Path:
    key = hashlib.sha1(os.path.abspath(source).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return cache_root() / "video_scan" / f"{key}.json"


def scan(entries: list[Entry], min_frames: int, skips: Skips, cache: Optional[Path] = None,
         progress: bool = False) -> list[Entry]:
    """Probe every candidate (in threads; results cached per file by size and mtime in ``cache``)
    and return the usable ones with ``first``/``frames``/``fps`` set; the rest go to ``skips``."""
    known = {}
    if cache is not None and cache.is_file():
        try:
            known = json.loads(cache.read_text()).get("files", {})
        except (OSError, ValueError):
            known = {}

    def stat(e: Entry):
        st = os.stat(e.path)
        return [st.st_size, st.st_mtime_ns] if e.kind != "frames" else [len(list_images(e.path)), st.st_mtime_ns]

    def one(e: Entry):
        key = stat(e)
        hit = known.get(e.path)
        if hit and hit[:2] == key:
            return e.path, hit
        try:
            n, fps = probe(e)
            return e.path, key + [n, fps]
        except Unusable as err:
            return e.path, key + [err.reason]

    todo = list({e.path: e for e in entries}.values())
    with ThreadPoolExecutor(max_workers=8 if len(todo) > 32 else 1) as pool:
        results = pool.map(one, todo)
        if progress and len(todo) > 200:
            from tqdm import tqdm
            results = tqdm(results, total=len(todo), desc="scanning videos", leave=False)
        results = dict(results)
    if cache is not None and results != known:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps({"version": 1, "files": results}))
            os.replace(tmp, cache)
        except OSError:
            pass  # a read-only cache only costs the next scan its speed
    usable = []
    for e in entries:
        r = results[e.path]
        if isinstance(r[2], str):
            skips.add(r[2], e.name)
            continue
        n, fps = r[2], r[3]
        first, last = 0, n
        if e.start is not None or e.end is not None:
            first = int(round((e.start or 0.0) * fps))
            last = min(n, int(round(e.end * fps))) if e.end is not None else n
        if last - first < min_frames:
            skips.add(f"too short (<{min_frames} frames)", e.name)
            continue
        usable.append(replace(e, first=first, frames=last - first, fps=fps))
    return usable


def list_videos(format: str = "auto", root: Optional[str] = None, caption_file: Optional[str] = None,
                class_captions: CaptionMap = None, templates: Optional[Sequence[str]] = None,
                classes: Optional[Sequence[str]] = None, min_frames: int = 1, cache: bool = True,
                progress: bool = False) -> tuple[str, list[Entry], Skips]:
    """Find and scan a dataset: ``(resolved format, usable entries, skips)``. Raises a ValueError
    naming the problem and the fix when no video is usable."""
    if format not in FORMATS:
        raise ValueError(f"data.format {format!r} is unknown; choose one of {FORMATS}")
    fmt = detect_format(root, caption_file) if format == "auto" else format
    skips = Skips()
    if fmt == "shards":
        from .shards import shard_entries

        candidates = shard_entries(root)
        usable = []
        for e in candidates:
            if e.frames < min_frames:
                skips.add(f"too short (<{min_frames} frames)", e.name)
            else:
                usable.append(e)
    else:
        if fmt == "captions":
            if not caption_file:
                raise ValueError("data.format is 'captions' but data.caption_file is not set; give the "
                                 "CSV/JSONL of path,caption rows")
            candidates = list_caption_file(caption_file, root, skips)
            source = caption_file
        else:
            caps = load_class_captions(class_captions)
            candidates = list_class_folders(root, fmt, caps, check_templates(templates), classes, skips)
            source = root
        usable = scan(candidates, min_frames, skips, _scan_cache_path(source) if cache else None, progress)
    if not usable:
        where = caption_file if fmt == "captions" else root
        found = f"skipped {skips.total}: {skips.describe()}" if skips.total else "found no candidates"
        raise ValueError(f"no usable videos in {where!r} (format {fmt}): {found}; {_fix_hint(fmt, skips)}")
    return fmt, usable, skips


_HINTS = {
    "too short": "lower data.frames or data.stride, or use longer videos",
    "class without caption": "give data.class_captions (a JSON file or dict: folder name -> caption)",
    "missing file": "caption-file paths are relative to data.root (default: the caption file's folder)",
    "empty caption": "fill in the captions in the caption file (UTF-8)",
    "non-UTF-8 caption": "save the caption file as UTF-8",
    "bad caption-file row": "each row needs a path and a caption column",
}


def _fix_hint(fmt: str, skips: Skips) -> str:
    if skips.total:
        top = skips.counts.most_common(1)[0][0]
        for key, hint in _HINTS.items():
            if top.startswith(key):
                return hint
        return "re-download the files or re-encode them (e.g. ffmpeg -i in.avi -c:v libx264 out.mp4)"
    return f"expected layout for format {fmt!r}: " + {
        "captions": "a caption file of path,caption rows", "classes": "root/<class>/*.mp4",
        "frames": "root/<video>/*.jpg or root/<class>/<video>/*.jpg",
        "strips": "root/<class>/*.jpg (horizontal strips of square frames)",
        "shards": "a folder written by tools/prepare_dataset.py"}[fmt]


# ----------------------------------------------------------------------------------------- reading
def iter_decoded(path: str, first: int, fps: float, seek: bool = True):
    """Yield ``(frame index, av.VideoFrame)`` from the keyframe at or before frame ``first`` (from the
    start with ``seek=False``; indices counted from the stream start at ``fps``); decoding errors
    become :class:`ReadError`."""
    import av

    try:
        with av.open(path) as c:
            s = c.streams.video[0]
            t0 = float(s.start_time * s.time_base) if s.start_time is not None else 0.0
            if seek and first > 0:
                c.seek(int((t0 + first / fps) / s.time_base), stream=s)
            for frame in c.decode(s):
                if frame.time is None:
                    raise ReadError(f"{path}: frames without timestamps")
                yield int(round((frame.time - t0) * fps)), frame
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as err:
        raise ReadError(f"{path}: {type(err).__name__}: {err}") from None


def decode_video(path: str, indices: Sequence[int], fps: float, _retry: bool = True,
                 _seek: bool = True) -> np.ndarray:
    """Decode frames ``indices`` (ascending) to uint8 ``[T, H, W, 3]``, seeking to the keyframe before
    the first one and converting only the frames wanted (decoding from the start instead if the seek
    overshoots). A frame missing from the stream (variable frame rate) is replaced by the next one;
    a stream that ends early (a metadata frame count that was too high) shifts the window back once."""
    want, out, k, last = list(indices), [None] * len(indices), 0, -1
    frames = iter_decoded(path, want[0], fps, _seek)
    for n, (last, frame) in enumerate(frames):
        if n == 0 and last > want[0] and _seek and want[0] > 0:
            frames.close()
            return decode_video(path, want, fps, _retry, _seek=False)
        img = None
        while k < len(want) and want[k] <= last:
            img = frame.to_ndarray(format="rgb24") if img is None else img
            out[k], k = img, k + 1
        if k == len(want):
            frames.close()
            return np.stack(out)
    shift = want[-1] - last
    if _retry and last >= 0 and want[0] - shift >= 0:
        return decode_video(path, [w - shift for w in want], fps, _retry=False)
    raise ReadError(f"{path}: the stream ended after frame {last}, the clip needs frame {want[-1]}")


@functools.lru_cache(maxsize=64)
def _open_shard(path: str) -> np.ndarray:
    return np.load(path, mmap_mode="r")


@functools.lru_cache(maxsize=256)   # strip datasets are small (Weizmann: 72 strips, ~90 MB decoded):
def _strip(path: str) -> np.ndarray:  # decode each JPEG once per worker, not once per clip
    return _read_image(path)


def read_frames(entry: Entry, offsets: Sequence[int]) -> np.ndarray:
    """Frames ``offsets`` (relative to the entry's first frame) as uint8 ``[T, H, W, 3]``."""
    idx = [entry.first + int(o) for o in offsets]
    try:
        if entry.kind == "video":
            return decode_video(entry.path, idx, entry.fps)
        if entry.kind == "shard":
            return np.asarray(_open_shard(entry.path)[idx])
        if entry.kind == "strip":
            img = _strip(entry.path)
            h = img.shape[0]
            if (idx[-1] + 1) * h > img.shape[1]:
                raise ReadError(f"{entry.path}: strip has {img.shape[1] // h} frames, clip needs {idx[-1] + 1}")
            return np.stack([img[:, i * h:(i + 1) * h] for i in idx])
        files = list_images(entry.path)
        return np.stack([_read_image(files[i]) for i in idx])
    except (Unusable, OSError, ValueError, IndexError) as err:
        raise ReadError(f"{entry.path}: {err}") from None


def _offset(excess: int, u: Optional[float]) -> int:
    return excess // 2 if u is None else min(excess, int(u * (excess + 1)))


def fit_frames(frames: Union[np.ndarray, torch.Tensor], size: int, crop: Optional[Sequence[float]] = None,
               flip: bool = False) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> uint8 ``[T, size, size, 3]``: resize the short side to ``size``
    (bilinear, antialiased, on uint8), crop (``crop`` = (v, u) fractions in [0, 1) for a random
    position, None for the centre) and optionally flip horizontally. Prepared shards and decoded
    videos go through this same function, so both give the same pixels."""
    x = torch.as_tensor(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    h, w = x.shape[1:3]
    if min(h, w) != size:
        nh, nw = (size, max(size, round(w * size / h))) if h <= w else (max(size, round(h * size / w)), size)
        x = F.interpolate(x.permute(0, 3, 1, 2), size=(nh, nw), mode="bilinear", antialias=True,
                          align_corners=False).permute(0, 2, 3, 1)
        h, w = nh, nw
    y0 = _offset(h - size, None if crop is None else crop[0])
    x0 = _offset(w - size, None if crop is None else crop[1])
    x = x[:, y0:y0 + size, x0:x0 + size]
    return (x.flip(2) if flip else x).contiguous()


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> float32 ``[3, T, H, W]`` in [-1, 1] (as :func:`io.from_uint8`)."""
    return x.permute(3, 0, 1, 2).float().div(127.5).sub(1)


# ---------------------------------------------------------------------------------------- datasets
class _Fallback(Dataset):
    """``__getitem__`` that survives files failing to decode: warn once per file (per process),
    count it in ``failures``, and load a substitute item drawn from ``(seed, i, attempt)``."""
    retries = 8
    space = 1 << 62  # indices a substitute may take

    def __getitem__(self, i: int) -> dict:
        j = i
        for attempt in range(self.retries + 1):
            try:
                return self.load(j)
            except ReadError as err:
                path = self.entry_for(j).path
                self.failures[path] += 1
                if path not in self._warned:
                    self._warned.add(path)
                    warnings.warn(f"video data: cannot decode {err}; using another clip instead "
                                  "(this file is reported once)", RuntimeWarning, stacklevel=2)
            j = int(np.random.default_rng([self.seed, i, attempt, 0xFA11]).integers(self.space))
        raise RuntimeError(f"video data: {self.retries + 1} clips in a row failed to decode "
                           f"({len(self.failures)} files so far); the dataset looks damaged: run "
                           "tools/prepare_dataset.py to find the bad files")

    def _init_fallback(self, seed: int) -> None:
        self.seed, self.failures, self._warned = seed, Counter(), set()


class VideoClips(_Fallback):
    """Clips of ``frames`` frames ``stride`` apart from scanned entries.

    Item ``i`` may be any non-negative integer: ``i % len(self)`` picks the video and ``i`` seeds the
    random choices (start, crop position, flip, caption variant), so with :class:`EpochIndexSampler`
    (``i = epoch * len + position``) each epoch sees other clips and a resumed run the same ones.
    With ``train=False`` the start is the middle of the video, the crop centred, no flip and the
    first caption: the same clip for every ``i`` of a video.

    Items: ``{"video": float32 [3, T, resolution, resolution] in [-1, 1], "caption": str,
    "index": int (the entry), "start": int (first frame of the clip in the entry)}``.
    """

    def __init__(self, entries: Sequence[Entry], resolution: int, frames: int, stride: int = 1,
                 train: bool = True, hflip: bool = False, seed: int = 0):
        if not entries:
            raise ValueError("VideoClips needs at least one video")
        if frames < 1 or stride < 1:
            raise ValueError(f"frames ({frames}) and stride ({stride}) must be >= 1")
        self.entries, self.resolution, self.frames, self.stride = list(entries), resolution, frames, stride
        self.train, self.hflip = train, hflip
        self.span = (frames - 1) * stride + 1
        self._init_fallback(seed)

    def __len__(self) -> int:
        return len(self.entries)

    def entry_for(self, i: int) -> Entry:
        return self.entries[i % len(self.entries)]

    def params(self, i: int) -> dict:
        """The clip of item ``i``: entry, start frame, crop fractions, flip and caption."""
        e = self.entry_for(i)
        room = max(0, e.frames - self.span)
        if not self.train:
            return dict(entry=e, start=room // 2, crop=None, flip=False, caption=e.captions[0])
        rng = np.random.default_rng([self.seed, i])
        start, crop, flip = int(rng.integers(room + 1)), tuple(rng.random(2)), bool(rng.random() < 0.5)
        return dict(entry=e, start=start, crop=crop, flip=flip and self.hflip,
                    caption=e.captions[int(rng.integers(len(e.captions)))])

    def load(self, i: int) -> dict:
        p = self.params(i)
        frames = read_frames(p["entry"], range(p["start"], p["start"] + self.span, self.stride))
        video = fit_frames(frames, self.resolution, p["crop"], p["flip"])
        return {"video": to_float(video), "caption": p["caption"], "index": i % len(self.entries),
                "start": p["start"]}


class RealClips(_Fallback):
    """``count`` clips of ``frames`` consecutive frames for real-data statistics (FVD): centre crop,
    no flip, the first caption. Clip ``j`` is video ``j % n`` and, over the ``ceil(count / n)``
    passes, pass ``j // n`` starts in its own part of the video (so repeated videos give other
    clips); the position inside that part comes from ``(seed, j)``.

    Items: ``{"video": uint8 [frames, resolution, resolution, 3], "caption": str}``.
    """

    def __init__(self, entries: Sequence[Entry], resolution: int, frames: int, count: int, seed: int = 0):
        self.entries = [e for e in entries if e.frames >= frames]
        if not self.entries:
            raise ValueError(f"no video has {frames} frames for real clips (longest: "
                             f"{max((e.frames for e in entries), default=0)}); ask for fewer frames")
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        self.resolution, self.frames, self.count = resolution, frames, count
        self.space = count
        self._init_fallback(seed)

    def __len__(self) -> int:
        return self.count

    def entry_for(self, j: int) -> Entry:
        return self.entries[j % len(self.entries)]

    def start(self, j: int) -> int:
        n, e = len(self.entries), self.entry_for(j)
        passes, room = math.ceil(self.count / n), e.frames - self.frames
        u = float(np.random.default_rng([self.seed, j, 0xFD]).random())
        return min(room, int((j // n + u) / passes * (room + 1)))

    def load(self, j: int) -> dict:
        if not 0 <= j < self.count:
            raise IndexError(j)
        e, s = self.entry_for(j), self.start(j)
        video = fit_frames(read_frames(e, range(s, s + self.frames)), self.resolution)
        return {"video": video, "caption": e.captions[0]}


class PromptItems(Dataset):
    """Validation items ``{"caption": str, "seed": int}``: ``per_prompt`` seeds per prompt."""

    def __init__(self, prompts: Sequence[str], per_prompt: int = 1, seed: int = 1000):
        if not prompts:
            raise ValueError("no validation prompts; set data.val_prompts")
        self.items = [{"caption": p, "seed": seed + i * per_prompt + k}
                      for i, p in enumerate(prompts) for k in range(per_prompt)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


class EpochIndexSampler(EpochShuffle):
    """:class:`EpochShuffle` yielding ``epoch * size + position``: the dataset takes ``i % size`` as
    the item and ``i`` as the seed of its random choices, so each epoch samples other clips."""

    def __iter__(self):
        base = self.epoch * self.size
        return (base + j for j in super().__iter__())


def fingerprint(entries: Iterable[Entry], root: Optional[str] = None) -> str:
    """A short hash of the files, segments and frame counts of a dataset (paths relative to root)."""
    h = hashlib.sha1()
    for e in entries:
        rel = os.path.relpath(e.path, root) if root else e.path
        h.update(f"{rel}|{e.start}|{e.end}|{e.first}|{e.frames}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:12]
