"""The product package's import graph: no development module, and no import from a lower layer to a higher one.

Layers, lowest first (docs/architecture.md explains each): a module may import its own layer and lower ones.
A new module lands in a layer by its package (or its top-level name); one not listed here fails the test, so the
map is kept up to date rather than silently bypassed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "src" / "hwcap_operator"

LAYERS: dict[str, int] = {
    # 0 foundation: names, keys, the auxv codec
    "__init__": 0, "arch": 0, "keys": 0, "selectors": 0, "logsetup": 0, "auxv": 0, "input_error": 0,
    # 1 vocabulary: the feature catalog and its parsers, masks, presets
    "features": 1, "mask": 1, "presets": 1,
    # 2 the kernel model
    "execmodel": 2,
    # 3 pure policy: the domain and the webhook's decisions
    "domain": 3, "admission": 3,
    # 4 I/O: the Kubernetes side and the node agent
    "kube": 4, "agent": 4,
    # 5 entry points
    "cli": 5,
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> int:
    parts = module.split(".")
    assert parts[0] == "hwcap_operator", module
    key = parts[1] if len(parts) > 1 else "__init__"
    if key not in LAYERS:
        raise AssertionError(f"{module}: not in the layer map of {__file__}; place it in a layer")
    return LAYERS[key]


def _imports(path: Path, text: str | None = None) -> list[tuple[int, str]]:
    """(line, imported module) for every absolute or relative import in the file (or ``text`` read as if it
    stood at ``path``), wherever it stands: function-level and TYPE_CHECKING imports count too."""
    tree = ast.parse(path.read_text(encoding="utf-8") if text is None else text, str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # ``from hwcap_operator import kube`` imports the subpackage
            if module == "hwcap_operator":
                found += [(node.lineno, f"hwcap_operator.{alias.name}") for alias in node.names]
    return found


SOURCES = sorted(PACKAGE_DIR.rglob("*.py"))


def test_the_package_has_sources() -> None:
    assert len(SOURCES) > 50


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE_DIR)))
def test_imports_only_its_own_or_lower_layers(path: Path) -> None:
    own = _layer(_module_name(path))
    wrong = [
        f"line {line}: {module} (layer {_layer(module)} > {own})"
        for line, module in _imports(path)
        if module.startswith("hwcap_operator") and _layer(module) > own
    ]
    assert not wrong, f"{path.relative_to(PACKAGE_DIR)} (layer {own}) imports upwards: {wrong}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE_DIR)))
def test_imports_no_development_tooling(path: Path) -> None:
    dev = [f"line {line}: {m}" for line, m in _imports(path) if m.split(".")[0] in ("hwcap_dev", "tests")]
    assert not dev, f"{path.relative_to(PACKAGE_DIR)} imports development code: {dev}"


def test_the_layer_check_catches_an_upward_import() -> None:
    """The check itself: an upward import added to a foundation module's text is seen and ranked higher."""
    probe = PACKAGE_DIR / "keys.py"
    text = probe.read_text(encoding="utf-8") + "\n\ndef _late() -> None:\n    from .kube import view  # noqa\n"
    imported = [m for _, m in _imports(probe, text)]
    assert "hwcap_operator.kube" in imported
    assert _layer("hwcap_operator.kube") > _layer(_module_name(probe))
