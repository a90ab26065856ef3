"""Write docs/reference/configuration.md from the code: every option of a config, its type, its default
and its meaning, read from the config dataclasses and the docstrings of the classes a config builds.

    python tools/config_reference.py           # rewrite docs/reference/configuration.md
    python tools/config_reference.py --check   # exit 1 naming what is stale or undocumented

Where the options come from (one table each):

- ``model.generator.*``      GeneratorConfig       fields + ``Attributes:`` (gan_video/models/generator_base.py)
- ``model.discriminator.*``  DiscriminatorConfig   fields + ``Attributes:`` (gan_video/models/discriminator.py)
- ``model.text.*``           TextEncoderConfig     fields + ``Attributes:`` (gan_video/models/text_config.py)
- ``model.speed.*``          SpeedConfig           fields + ``Attributes:`` (gan_video/speed.py)
- ``model.*``                TextToVideoGAN        ``__init__`` signature + the class's ``Args:`` (gan_video/module.py)
- ``data.init_args.*``       ShapesDataModule, VideoDataModule: ``__init__`` + ``Args:``

An option without a docstring entry, or a docstring entry naming no option, is an error of
``--check`` (and of tests/test_config_reference.py): write the entry in the docstring, then run this
script again.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import inspect
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any, NamedTuple, Optional

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "reference" / "configuration.md"
COMMAND = "python tools/config_reference.py"
UNDOCUMENTED = "**undocumented**"

if str(ROOT) not in sys.path:           # run from a checkout without installing the package
    sys.path.insert(0, str(ROOT))


class Section(NamedTuple):
    key: str            # the YAML path of the options: "model.generator"
    anchor: str         # the heading's id
    obj: type           # a dataclass (fields) or a class (__init__'s parameters)
    docs: str           # the docstring section that describes them: "Attributes" or "Args"
    source: str         # the file, for the reader
    intro: str          # one line under the heading


class Option(NamedTuple):
    name: str
    type: str
    default: str
    meaning: str


def sections() -> list[Section]:
    from gan_video.data.shapes_datamodule import ShapesDataModule
    from gan_video.data.video_datamodule import VideoDataModule
    from gan_video.models.discriminator import DiscriminatorConfig
    from gan_video.models.generator_base import GeneratorConfig
    from gan_video.models.text_config import TextEncoderConfig
    from gan_video.module import TextToVideoGAN
    from gan_video.speed import SpeedConfig

    return [
        Section("model.generator", "model-generator", GeneratorConfig, "Attributes",
                "gan_video/models/generator_base.py",
                "The generator (`GeneratorConfig`); `arch` picks one of the three."),
        Section("model.discriminator", "model-discriminator", DiscriminatorConfig, "Attributes",
                "gan_video/models/discriminator.py",
                "The discriminator's heads and how they read the text (`DiscriminatorConfig`)."),
        Section("model.text", "model-text", TextEncoderConfig, "Attributes",
                "gan_video/models/text_config.py",
                "The text encoder (`TextEncoderConfig`); G and D each own one unless `model.share_text`."),
        Section("model.speed", "model-speed", SpeedConfig, "Attributes", "gan_video/speed.py",
                "How a training run computes, never what (`SpeedConfig`); see the scaling guide for measured effects."),
        Section("model", "model", TextToVideoGAN, "Args", "gan_video/module.py",
                "The training module (`TextToVideoGAN`): losses, optimisers, EMA."),
        Section("data.init_args", "data-shapes", ShapesDataModule, "Args",
                "gan_video/data/shapes_datamodule.py",
                "With `data.class_path: gan_video.data.ShapesDataModule`: the built-in moving shapes."),
        Section("data.init_args", "data-video", VideoDataModule, "Args",
                "gan_video/data/video_datamodule.py",
                "With `data.class_path: gan_video.data.VideoDataModule`: real videos (caption files, "
                "class folders, frame folders, strips, prepared datasets)."),
    ]


# ----------------------------------------------------------------------------------- docstrings
ENTRY = re.compile(r"^(\w+)\s*(?:\([^)]*\))?\s*:(?:\s+(.*))?$")


def docstring_entries(obj: type, section: str) -> dict[str, str]:
    """The entries of the Google-style ``section:`` (``Args``, ``Attributes``) of ``obj``'s own
    docstring as ``{name: text}``, each entry's lines joined into one. An entry starts at the
    section's first indentation with ``name:``; deeper lines continue it; a line at or left of the
    section header's indentation ends the section."""
    lines = inspect.cleandoc(obj.__doc__ or "").splitlines()
    header = next((i for i, line in enumerate(lines) if line.strip() == f"{section}:"), None)
    if header is None:
        return {}
    base = len(lines[header]) - len(lines[header].lstrip())
    entries: dict[str, list[str]] = {}
    indent, current = None, None
    for line in lines[header + 1:]:
        if not line.strip():
            continue
        level = len(line) - len(line.lstrip())
        if level <= base:
            break
        if indent is None:
            indent = level
        if level == indent:
            match = ENTRY.match(line.strip())
            if match is None:
                break
            current = match.group(1)
            entries[current] = [match.group(2) or ""]
        elif current is not None:
            entries[current].append(line.strip())
    return {name: " ".join(p for p in parts if p) for name, parts in entries.items()}


ROLE = re.compile(r":(?:mod|class|func|meth|attr|data|obj|exc):`(~?)\.?([^`]+)`")


def to_markdown(text: str) -> str:
    """reStructuredText of a docstring entry as one Markdown table cell."""
    text = ROLE.sub(lambda m: f"`{m.group(2).split('.')[-1] if m.group(1) else m.group(2)}`", text)
    text = text.replace("``", "`")
    parts = text.split("`")
    for i in range(0, len(parts), 2):              # outside code spans only
        parts[i] = parts[i].replace("<", "&lt;")
    return "`".join(parts).replace("|", "\\|")


# ----------------------------------------------------------------------------------- options
def type_text(tp: Any, links: dict[type, str]) -> str:
    """A type annotation as a reader sees it in a YAML: ``int``, one of ``a``, ``b``; ``float or null``."""
    if tp is type(None):
        return "null"
    if tp in links:
        return links[tp]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        named = [type_text(a, links) for a in args if a is not type(None)]
        return " or ".join(named + (["null"] if type(None) in args else []))
    if origin in (list, tuple, dict):
        return f"{origin.__name__}[{', '.join('...' if a is Ellipsis else type_text(a, links) for a in args)}]"
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def value_text(value: Any) -> str:
    """A default as it is written in a YAML."""
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`' if value == "" or value.strip() != value else f"`{value}`"
    if isinstance(value, (list, tuple)):
        return "`[" + ", ".join(value_text(v).strip("`") for v in value) + "]`"
    return f"`{value!r}`"


def parameters(section: Section, links: dict[type, str]) -> list[tuple[str, str, str]]:
    """``(name, type, default)`` of every option of ``section``, in code order."""
    obj = section.obj
    if dataclasses.is_dataclass(obj):
        hints = typing.get_type_hints(obj)
        out = []
        for f in dataclasses.fields(obj):
            if f.default is not dataclasses.MISSING:
                default = value_text(f.default)
            elif f.default_factory is not dataclasses.MISSING:
                default = value_text(f.default_factory())
            else:
                default = "required"
            out.append((f.name, type_text(hints[f.name], links), default))
        return out
    out = []
    for p in inspect.signature(obj.__init__, eval_str=True).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        tp = p.annotation if p.annotation is not p.empty else Any
        inner = [a for a in typing.get_args(tp) if a in links]
        if inner or tp in links:             # a config section of its own
            default = "its defaults" if p.default is None else value_text(p.default)
        else:
            default = "required" if p.default is p.empty else value_text(p.default)
        out.append((p.name, type_text(tp, links), default))
    return out


def collect() -> tuple[list[tuple[Section, list[Option]]], list[str]]:
    """Every section with its options, and the problems: options without a docstring entry and
    docstring entries naming no option."""
    secs = sections()
    links = {s.obj: f"[`{s.key}.*`](#{s.anchor})" for s in secs if dataclasses.is_dataclass(s.obj)}
    out, problems = [], []
    for sec in secs:
        entries = docstring_entries(sec.obj, sec.docs)
        params = parameters(sec, links)
        where = f"the {sec.docs}: section of {sec.obj.__name__}'s docstring ({sec.source})"
        options = []
        for name, tp, default in params:
            meaning = entries.get(name)
            if not meaning:
                problems.append(f"{sec.key}.{name}: no entry in {where}")
            options.append(Option(name, tp, default, to_markdown(meaning) if meaning else UNDOCUMENTED))
        known = {name for name, _, _ in params}
        problems += [f"{sec.key}.{name}: {where} describes it, but {sec.obj.__name__} has no such option"
                     for name in entries if name not in known]
        out.append((sec, options))
    return out, problems


# ----------------------------------------------------------------------------------- the page
def render() -> str:
    secs, _ = collect()
    lines = [
        "<!-- Generated by tools/config_reference.py from the code's docstrings: do not edit by hand.",
        f"     Edit the docstrings, then run: {COMMAND} -->",
        "",
        "# Configuration reference",
        "",
        "Every option of a `gan-video fit` config, generated from the code: the config dataclasses'",
        "fields and the `Attributes:` / `Args:` sections of their docstrings. A YAML key `model.generator.arch`",
        "is `--model.generator.arch VALUE` on the command line; `gan-video fit --config C --print_config`",
        "prints every value a config resolves to. The `trainer.*` keys are Lightning's `Trainer` arguments;",
        "`seed_everything`, `threads` and `ckpt_path` are in the [training guide](../training.md).",
        "",
        "| section | options |",
        "|---|---|",
    ]
    for sec, options in secs:
        lines.append(f"| [`{sec.key}.*`](#{sec.anchor}) ({sec.obj.__name__}) | {len(options)} |")
    for sec, options in secs:
        lines += ["", f"## `{sec.key}.*`: {sec.obj.__name__} {{#{sec.anchor}}}", "",
                  f"{sec.intro} Source: `{sec.source}`.", "",
                  "| option | type | default | meaning |", "|---|---|---|---|"]
        lines += [f"| `{o.name}` | {o.type} | {o.default} | {o.meaning} |" for o in options]
    return "\n".join(lines) + "\n"


def row_keys(text: str) -> dict[str, str]:
    """``{"model.generator.arch": row}`` for every option row of a rendered page."""
    rows, section = {}, ""
    for line in text.splitlines():
        heading = re.match(r"^## `([\w.]+)\.\*`: (\w+)", line)
        if heading:
            section = f"{heading.group(1)} ({heading.group(2)})"
        row = re.match(r"^\| `(\w+)` \|", line)
        if row and section:
            rows[f"{section} {row.group(1)}"] = line
    return rows


def stale_report(committed: str, generated: str) -> str:
    """What differs between the committed page and the generated one, by option where possible."""
    old, new = row_keys(committed), row_keys(generated)
    said = [f"  {k}: not in the code any more" for k in old if k not in new]
    said += [f"  {k}: new in the code" for k in new if k not in old]
    said += [f"  {k}: its type, default or meaning changed" for k in new if k in old and old[k] != new[k]]
    if not said:
        diff = list(difflib.unified_diff(committed.splitlines(), generated.splitlines(), "committed",
                                         "generated", n=0, lineterm=""))
        said = ["  " + line for line in diff[:20]]
    return "\n".join(said)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the page is stale or an option has no docstring entry")
    parser.add_argument("--out", type=Path, default=OUT, help=f"the page (default: {OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    _, problems = collect()
    generated = render()
    if not args.check:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(generated, encoding="utf-8")
        print(f"wrote {args.out}")
        if problems:
            print("options without a docstring entry (or entries without an option):\n  "
                  + "\n  ".join(problems), file=sys.stderr)
            return 1
        return 0
    failed = False
    if problems:
        print("options without a docstring entry (or entries without an option):\n  " + "\n  ".join(problems))
        failed = True
    committed = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
    if not committed:
        print(f"{args.out} does not exist; write it with: {COMMAND}")
        failed = True
    elif committed != generated:
        print(f"{args.out} is stale (regenerate it with: {COMMAND}):\n" + stale_report(committed, generated))
        failed = True
    if not failed:
        print(f"{args.out} is up to date; every option has a docstring entry")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
