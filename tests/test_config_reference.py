"""docs/reference/configuration.md is generated from the code (tools/config_reference.py): every
option of the config dataclasses, TextToVideoGAN and the data modules has a docstring entry, and the
committed page is what the script writes today. Regenerate it with ``python tools/config_reference.py``."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_tool():
    spec = importlib.util.spec_from_file_location("config_reference", ROOT / "tools" / "config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ref = _load_tool()


@pytest.fixture(scope="module")
def collected():
    return ref.collect()


def test_every_option_has_a_docstring_entry(collected):
    _, problems = collected
    missing = [p for p in problems if ": no entry in " in p]
    assert not missing, ("options without a docstring entry (write one in the docstring named, then run "
                         f"`{ref.COMMAND}`):\n  " + "\n  ".join(missing))


def test_every_docstring_entry_names_an_option(collected):
    _, problems = collected
    orphans = [p for p in problems if ": no entry in " not in p]
    assert not orphans, "docstring entries of options that do not exist:\n  " + "\n  ".join(orphans)


def test_committed_reference_is_what_the_code_generates():
    committed = ref.OUT.read_text(encoding="utf-8") if ref.OUT.is_file() else ""
    generated = ref.render()
    assert committed == generated, (f"{ref.OUT.relative_to(ROOT)} is stale; regenerate it with `{ref.COMMAND}`:\n"
                                    + ref.stale_report(committed, generated))


def test_every_section_and_option_is_on_the_page(collected):
    sections, _ = collected
    keys = {s.key for s, _ in sections}
    assert {"model.generator", "model.discriminator", "model.text", "model.speed", "model",
            "data.init_args"} <= keys
    page = ref.render()
    for sec, options in sections:
        assert options, f"{sec.key} lists no option"
        for o in options:
            assert f"| `{o.name}` |" in page, f"{sec.key}.{o.name} is missing from the page"


def test_check_exits_1_naming_a_stale_option(tmp_path):
    page = tmp_path / "configuration.md"
    page.write_text(ref.render().replace("| `z_content` |", "| `z_kontent` |"), encoding="utf-8")
    assert ref.main(["--check", "--out", str(page)]) == 1
    assert ref.main(["--out", str(page)]) == 0                  # regenerates it
    assert ref.main(["--check", "--out", str(page)]) == 0
    assert page.read_text(encoding="utf-8") == ref.render()


def test_docstring_parser():
    class Example:
        """Summary.

        Args:
            alpha: the first, on
                two lines with ``code`` and :class:`~a.b.Thing`.
            beta (int): the second | a pipe.

        Note: not an argument.
            gamma: not an entry either.
        """

    entries = ref.docstring_entries(Example, "Args")
    assert entries == {"alpha": "the first, on two lines with ``code`` and :class:`~a.b.Thing`.",
                       "beta": "the second | a pipe."}
    assert ref.to_markdown(entries["alpha"]) == "the first, on two lines with `code` and `Thing`."
    assert ref.to_markdown(entries["beta"]) == "the second \\| a pipe."
