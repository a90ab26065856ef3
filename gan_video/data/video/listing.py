"""Finding a dataset's videos: the layout of a folder (:func:`detect_format`), its candidates with
their captions (class folders, frame folders, strips, caption-file rows, prepared shards), and
:func:`list_videos`, which scans them (:mod:`.probing`) and explains, when nothing is usable, why and
what to change."""
from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path
from typing import Literal, Optional, Sequence, get_args

from ..shards import INDEX, load_index, shard_paths
from ..streaming import SIDE_FILE, is_remote, load_info, looks_prepared
from .captions import CaptionMap, caption_variants, check_templates, class_key, load_class_captions
from .entry import IMAGE_EXTS, VIDEO_EXTS, Entry, Skips, list_images, natural_key
from .probing import scan, scan_cache_file

VideoFormat = Literal["auto", "captions", "classes", "frames", "strips", "litdata", "shards"]
FORMATS = get_args(VideoFormat)


def _visible(folder: Path) -> list[Path]:
    try:
        return sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=natural_key)
    except OSError as err:
        raise FileNotFoundError(f"cannot list {str(folder)!r} ({err.strerror}); check data.root") from None


def _looks_like_strip(image: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(image) as im:
            w, h = im.size
    except (OSError, SyntaxError, ValueError):
        return False
    return h > 0 and w % h == 0 and w >= 2 * h


def detect_format(root: Optional[str], caption_file: Optional[str]) -> str:
    """The layout of ``root``: ``captions`` when a caption file is given, ``litdata`` for a prepared
    dataset (``s3://...``, or a folder with LitData's chunks), ``shards`` for an older gan_video's
    ``.npy`` shards, else from what the first non-empty subfolder holds."""
    if caption_file:
        return "captions"
    if not root:
        raise ValueError("data.root is not set; point it at the dataset folder (or set "
                         "data.caption_file for a caption-file dataset)")
    if is_remote(root) or looks_prepared(root):
        return "litdata"
    rootp = Path(root)
    if not rootp.is_dir():
        raise FileNotFoundError(f"data root {root!r} is not a folder; download or prepare the dataset "
                                "there, or set data.root to where it is")
    if (rootp / INDEX).is_file():
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
                     "(root/<class>/*.jpg) or a prepared dataset (gan-video-prepare); set data.format, or "
                     "data.caption_file for a caption file")


def list_class_folders(root: str, layout: str, class_captions: dict, templates: Sequence[str],
                       classes: Optional[Sequence[str]], skips: Skips) -> list[Entry]:
    """Candidates of the ``classes``, ``frames`` and ``strips`` layouts (see :mod:`gan_video.data.video`)."""
    if is_remote(root) or looks_prepared(root):
        return "litdata"
    rootp = Path(root)
    if not rootp.is_dir():
        raise FileNotFoundError(f"data root {root!r} is not a folder; download the dataset there "
                                "(see the config's comments for the layout) or set data.root")
    folders = [p for p in _visible(rootp) if p.is_dir()]
    if classes:
        by_name = {class_key(p.name): p for p in folders}
        missing = [c for c in classes if class_key(c) not in by_name]
        if missing:
            raise ValueError(f"classes {missing} have no folder under {root!r} (found: "
                             f"{sorted(p.name for p in folders)[:20]}); fix data.classes or the folder names")
        folders = [by_name[class_key(c)] for c in classes]
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


def shard_entries(root: str) -> list[Entry]:
    """The videos of a prepared shard folder as :class:`Entry` ranges of its memory-mapped shards."""
    index = load_index(root)
    files = shard_paths(root, index)
    return [Entry(files[v["shard"]], "shard", tuple(v["captions"]), label=v.get("label", ""),
                  first=v["offset"], frames=v["length"], fps=v.get("fps") or 0.0, source=v.get("source", ""))
            for v in index["videos"]]


def prepared_entries(root: str) -> list[Entry]:
    """The videos of a prepared dataset (:mod:`gan_video.data.streaming`) as :class:`Entry` items."""
    info = load_info(root)
    return [Entry(root, "litdata", tuple(v["captions"]), label=v.get("label") or "", first=k,
                  frames=int(v["frames"]), fps=v.get("fps") or 0.0, source=v.get("source") or "")
            for k, v in enumerate(info["videos"])]


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
    if fmt in ("shards", "litdata"):
        candidates = shard_entries(root) if fmt == "shards" else prepared_entries(root)
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
        usable = scan(candidates, min_frames, skips, scan_cache_file(source) if cache else None, progress)
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
        "litdata": "a folder or s3://bucket/prefix written by gan-video-prepare",
        "shards": "a folder of .npy shards of an older gan_video"}[fmt]
