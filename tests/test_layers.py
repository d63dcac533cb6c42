"""The kit's layers, as the README's layout draws them: every import points down, and the kit
stands on its own (nothing under conformance/ imports the reference, the galleries or the tests)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "conformance"

#: Lowest first. A module may import its own layer and the layers below it, never one above.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"spec", "contract"}),  # what an author imports, and the clauses as data
    frozenset({"taskstore", "models", "strategies"}),  # the kit's store, the oracles, the generators
    frozenset({"checker"}),  # judging whole histories against a model
    frozenset({"wire"}),  # a target in another process, spoken to in JSON lines
    frozenset({"harness"}),  # driving a target: loop, clock, timeouts, answer checks
    frozenset({"checks"}),  # what the suite and machines check of a driven store
    frozenset({"machines"}),
    frozenset({"report"}),
    frozenset({"plugin"}),
    # the suite pytest runs, the server that puts a Python target on the wire, and the command line
    frozenset({"suite", "serve", "__main__"}),
)
#: Packages outside the kit that it must never reach for.
OUTSIDE = ("reference_backend", "testbed", "tests")


def _layer(part: str) -> int:
    for index, layer in enumerate(LAYERS):
        if part in layer:
            return index
    raise AssertionError(f"conformance/{part} is in no layer of tests/test_layers.py: place it")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every absolute import in a file, ``from conformance import spec`` as ``conformance.spec``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "conformance":
                found += [(node.lineno, f"conformance.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_imports_point_down_the_layers(path: Path) -> None:
    own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    for line, module in _imports(path):
        top, _, rest = module.partition(".")
        assert top not in OUTSIDE, f"{path.name}:{line} imports {module}: the kit must stand on its own"
        if top != "conformance" or not rest:
            continue
        target = rest.split(".")[0]
        if target in {name for layer in LAYERS for name in layer}:
            assert _layer(target) <= _layer(own), f"{path.relative_to(PACKAGE)}:{line} imports {module}, a layer above {own}"


def test_layers_name_every_part_of_the_package() -> None:
    parts = {p.stem for p in PACKAGE.iterdir() if (p.is_dir() or p.suffix == ".py") and not p.name.startswith(("_", "."))}
    placed = {name for layer in LAYERS for name in layer}
    assert parts <= placed, f"parts of conformance/ in no layer: {sorted(parts - placed)}"


def test_importing_the_kit_loads_no_reference() -> None:
    """An author's ``import conformance`` (and the plugin pytest loads) pulls in nothing of ours but the kit."""
    code = (
        "import sys, conformance, conformance.plugin, conformance.suite.conftest\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {OUTSIDE!r})\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "", f"import conformance loaded {result.stdout.strip()}"
