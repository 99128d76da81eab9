"""vci's own modules import downwards only, with no cycles, counting imports inside functions too.

The layers, lowest first (a module may import its own package and anything in a lower layer):
foundations (errors, digests, refs, config, progress, files, retry, jsonwire, redact, the ``vci`` facade),
where bytes live and the adapters over them (archive, requirements, model, modeldir, store, oci,
frameworks, ci), what a run is (runs, fetch, ledger, client, serve), building images (build), running
them (deploy), releasing them (release), and the command line (cli). The one exception is the
design's: ``Run.deploy()`` and ``Run.get_deployed_model()`` reach up into deploy, lazily, as
conveniences.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "vci"
LAYERS = [
    {
        "vci",
        "vci.errors",
        "vci.digests",
        "vci.refs",
        "vci.config",
        "vci.envrules",
        "vci.kubevalues",
        "vci.progress",
        "vci.files",
        "vci.retry",
        "vci.jsonwire",
        "vci.logview",
        "vci.redact",
    },
    {
        "vci.archive",
        "vci.requirements",
        "vci.model",
        "vci.modeldir",
        "vci.store",
        "vci.oci",
        "vci.frameworks",
        "vci.ci",
        "vci.scaffold",
        "vci.schema",
        "vci.validator",
        "vci.sign",
    },
    {
        "vci.runs",
        "vci.fetch",
        "vci.ledger",
        "vci.catalog",
        "vci.tags",
        "vci.client",
        "vci.serve",
        "vci.predictions",
        "vci.trust",
        "vci.verification",
    },
    {"vci.importers"},
    {"vci.build"},
    {"vci.deploy"},
    {"vci.release"},
    {"vci.ui"},
    {"vci.cli", "vci.__main__"},
]
ALLOWED_UPWARD = {("vci.runs", "vci.deploy")}  # Run.deploy() / Run.get_deployed_model(), lazy by design


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def group_of(module: str) -> str:
    """The layer entry a module belongs to: itself, or its top-level package under vci."""
    return module if module in {"vci", "vci.__main__"} else ".".join(module.split(".")[:2])


def layer_of(module: str) -> int:
    group = group_of(module)
    for number, members in enumerate(LAYERS):
        if group in members:
            return number
    raise AssertionError(f"{module} is in no layer: add its package to LAYERS in {__file__}")


def imports_in(module: str, source: str, is_package: bool = False) -> set[str]:
    """Every vci module ``source`` (the text of ``module``) imports, at the top or inside functions."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    tree, found = ast.parse(source), set()
    typing_only = {id(n) for block in ast.walk(tree) if _is_type_checking(block) for n in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue  # `if TYPE_CHECKING:` imports exist for annotations only, never at run time
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "vci"}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            prefix = ".".join(base + ([node.module] if node.module else []))
            if prefix.split(".")[0] == "vci":
                found |= {f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in MODULES else prefix for a in node.names}
    return found - {module}


def _is_type_checking(node) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports_of(module: str) -> set[str]:
    path = MODULES[module]
    return imports_in(module, path.read_text(), path.name == "__init__.py")


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_is_in_a_layer():
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_upwards(module):
    upward = sorted(
        t
        for t in GRAPH[module]
        if layer_of(t) > layer_of(module) and (group_of(module), group_of(t)) not in ALLOWED_UPWARD
    )
    assert upward == [], f"{module} (layer {layer_of(module)}) imports from higher layers: {upward}"


def test_there_are_no_import_cycles():
    graph = {
        m: {t for t in targets if t in MODULES and (group_of(m), group_of(t)) not in ALLOWED_UPWARD}
        for m, targets in GRAPH.items()
    }
    cycles, done, path = [], set(), []

    def visit(module: str) -> None:
        if module in path:
            cycles.append(path[path.index(module) :] + [module])
            return
        if module in done:
            return
        path.append(module)
        for target in sorted(graph[module]):
            visit(target)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
    assert cycles == []


def test_the_check_sees_imports_inside_functions_and_relative_ones():
    source = "import vci.errors\n\ndef f():\n    from ..deploy import target_for\n    from . import base\n"
    found = imports_in("vci.store.local", source)
    assert found == {"vci.errors", "vci.deploy", "vci.store.base"}
    assert [t for t in found if layer_of(t) > layer_of("vci.store.local")] == ["vci.deploy"]
    typed = "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from ..deploy import target_for\n"
    assert imports_in("vci.store.local", typed) == set()  # for annotations only: no import at run time
