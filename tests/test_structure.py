"""The house reads top-down: no import cycles in gan_video/, arrows point down only, small files."""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "gan_video"

# layers, top to bottom: a module may import its own layer or any layer below it, never one above
LAYERS = [
    ("tools", "cli"),
    ("api",),
    ("export", "callbacks", "output"),
    ("module", "losses", "checkpoints", "health", "speed", "sampling", "random_state"),
    ("metrics",),
    ("models", "data"),
    ("provenance",),
    ("watermark",),
    ("watermark_codec", "watermark_geometry", "watermark_layout"),
    ("weights_text", "weights_image"),
    ("weights",),
    ("cache",),
]


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_imports(path: Path) -> set[str]:
    """Every gan_video module that ``path`` imports, at module level or inside a function."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("gan_video")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("gan_video"):
                continue
            # `from . import x` / `from .pkg import mod`: x may be a module of its own
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.add(sub if module_exists(sub) else target)
    return {m for m in out if module_exists(m)}


def module_exists(name: str) -> bool:
    p = PKG.parent.joinpath(*name.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def graph() -> dict[str, set[str]]:
    return {module_name(p): project_imports(p) - {module_name(p)} for p in sorted(PKG.rglob("*.py"))}


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str):
        state[n] = 1
        stack.append(n)
        for m in sorted(g.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(g):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def layer_of(name: str) -> int | None:
    top = name.split(".")[1] if name.count(".") else None
    for i, group in enumerate(LAYERS):
        if top in group:
            return i
    return None


def test_find_cycle_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in graph() if m.count(".") and layer_of(m) is None)
    assert not unplaced, f"modules in no layer of LAYERS (add them where they belong): {unplaced}"


def test_imports_point_down():
    wrong = []
    for mod, deps in graph().items():
        here = layer_of(mod)
        for dep in deps:
            there = layer_of(dep)
            if here is not None and there is not None and there < here:
                wrong.append(f"{mod} -> {dep}")
    assert not wrong, "imports that point up the layers " + str(LAYERS) + ": " + ", ".join(sorted(wrong))


def test_cache_is_a_leaf():
    assert graph()["gan_video.cache"] == set()


def test_no_file_over_450_lines():
    long = {str(p.relative_to(PKG)): n for p in PKG.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 450}
    assert not long, f"files over 450 lines (one role per file): {long}"
