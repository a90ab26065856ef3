"""Captions of class folders: a caption from a folder name (``playing_golf`` -> "playing golf") or
from ``class_captions`` (a dict or JSON file, with synonyms), expanded through caption templates
(``"a video of {}"``) into the variants training draws from."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Optional, Sequence, Union

CaptionMap = Union[dict, str, None]
REPO = Path(__file__).resolve().parents[3]  # relative class_captions paths may be the repo's


def class_key(name: str) -> str:
    """How class names are compared: ignoring case, ``_`` = space, runs of spaces = one."""
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
            path = REPO / spec
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
        out[class_key(str(key))] = caps
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
    base = class_captions.get(class_key(label)) or ([class_caption(label)] if class_caption(label) else None)
    if not base:
        return None
    return tuple(dict.fromkeys(t.format(c) for c in base for t in templates))
