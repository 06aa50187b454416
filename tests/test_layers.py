"""The one-way package order (issue 21): lower layers never import upper ones, no module cycles, no private imports.

Imports are read statically with `ast`, at module level and inside functions alike (a deferred import is still a
dependency). Imports under `if TYPE_CHECKING:` count for the layer order (a type in a signature is a dependency on
that layer's API) but not for the cycle check (they never run). Packages of `LAYERS` that do not exist are skipped.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Bottom to top: a module may import its own package, and packages of lower layers. Packages sharing a layer are
# peers that never import each other (the model packages: each backbone stands alone on the shared interface).
# Adding a backbone package is one name in the model layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("data_tools",),  # formats, the pair builder, image decoding, the LLM client, the toy world
    ("backbones",),  # the backbone interface and the shared masked-diffusion math
    ("janus", "lumina_dimoo", "showo"),  # model packages
    ("rewards",),
    ("open_r1",),  # the trainer, its configs and entry points (not the evaluation)
    ("open_r1.evaluation",),
    ("scripts",),
    ("tests",),
)


@dataclass(frozen=True)
class Import:
    """One import statement, resolved to the first-party module it loads."""

    source: str  # importing module, dotted ("janus.sampling")
    target: str  # imported module ("janus.processor"); a package's name for its __init__
    names: tuple[str, ...]  # the names taken by `from target import ...` (empty for `import target`)
    line: int
    type_checking: bool  # inside `if TYPE_CHECKING:`

    def where(self, root: Path) -> str:
        return f"{module_path(root, self.source).relative_to(root)}:{self.line}"


def module_path(root: Path, module: str) -> Path:
    """The file of a dotted module name: `pkg/mod.py`, or `pkg/__init__.py` for a package."""
    base = root.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def first_party_modules(root: Path, tops: set[str]) -> dict[str, Path]:
    """Dotted name -> file for every module under the top-level folders `tops` that exist in `root`."""
    modules = {}
    for top in sorted(tops):
        if not (root / top).is_dir():
            continue
        for path in sorted((root / top).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST, type_checking: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement of `tree` (any depth), with whether it sits in an `if TYPE_CHECKING:` branch."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, type_checking
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                yield from _import_nodes(ast.Module(body=[child], type_ignores=[]), True)
            for child in node.orelse:
                yield from _import_nodes(ast.Module(body=[child], type_ignores=[]), type_checking)
        else:
            yield from _import_nodes(node, type_checking)


def _absolute(node: ast.ImportFrom, source: str, is_package: bool) -> str:
    """The absolute module of a `from ... import` (relative imports resolved against `source`)."""
    if not node.level:
        return node.module or ""
    base = source.split(".") if is_package else source.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def module_imports(root: Path, modules: dict[str, Path]) -> list[Import]:
    """The first-party imports of every module; `from pkg import sub` of a submodule counts as importing `sub`."""
    found = []
    for source, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node, type_checking in _import_nodes(tree):
            if isinstance(node, ast.Import):
                targets = [(alias.name, ()) for alias in node.names]
            else:
                module = _absolute(node, source, path.name == "__init__.py")
                names = tuple(alias.name for alias in node.names)
                submodules = [f"{module}.{name}" for name in names if f"{module}.{name}" in modules]
                targets = [(sub, ()) for sub in submodules]
                rest = tuple(name for name in names if f"{module}.{name}" not in modules)
                if rest or not submodules:
                    targets.append((module, rest))
            for target, names in targets:
                known = _known_module(target, modules)
                if known is not None:
                    found.append(Import(source, known, names, node.lineno, type_checking))
    return found


def _known_module(name: str, modules: dict[str, Path]) -> str | None:
    """`name` or its nearest first-party parent (`import janus.foo.bar` of a missing module still loads janus)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def layer_of(module: str) -> tuple[int, str]:
    """(layer index, package) of a module: the longest entry of `LAYERS` that is the module or a parent of it."""
    best = None
    for index, packages in enumerate(LAYERS):
        for package in packages:
            if (module == package or module.startswith(package + ".")) and (
                best is None or len(package) > len(best[1])
            ):
                best = (index, package)
    if best is None:
        raise ValueError(f"{module}: not in any layer of tests/test_layers.py LAYERS; add its package there")
    return best


def order_violations(imports: list[Import], root: Path) -> list[str]:
    """Imports of an upper layer, or of a peer package in the same layer."""
    bad = []
    for imp in imports:
        (source_layer, source_pkg), (target_layer, target_pkg) = layer_of(imp.source), layer_of(imp.target)
        if target_layer > source_layer or (target_layer == source_layer and target_pkg != source_pkg):
            bad.append(f"{imp.where(root)}: {source_pkg} imports {imp.target} ({target_pkg} is not below it)")
    return bad


def module_cycles(imports: list[Import]) -> list[list[str]]:
    """Strongly connected groups of more than one module (or a module importing itself), run-time imports only."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if not imp.type_checking:
            graph.setdefault(imp.source, set()).add(imp.target)
            graph.setdefault(imp.target, set())
    # Tarjan's algorithm, iterative (no recursion limit on deep graphs).
    index, low, on_stack, stack, groups, counter = {}, {}, set(), [], [], [0]
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1 or node in graph[node]:
                        groups.append(sorted(group))
            elif child not in index:
                index[child] = low[child] = counter[0]
                counter[0] += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return sorted(groups)


def private_imports(imports: list[Import], root: Path, exempt: tuple[str, ...] = ("tests",)) -> list[str]:
    """`from other_module import _name`: a private helper used outside its module belongs in a public API.

    Tests are exempt: a white-box test of a module's private helper is part of that module's contract.
    """
    bad = []
    for imp in imports:
        if imp.source == imp.target or imp.source.split(".")[0] in exempt:
            continue
        private = [name for name in imp.names if name.startswith("_") and not name.startswith("__")]
        if private:
            bad.append(f"{imp.where(root)}: imports private {', '.join(private)} from {imp.target}")
    return bad


def _repo_imports() -> list[Import]:
    tops = {package.split(".")[0] for packages in LAYERS for package in packages}
    return module_imports(ROOT, first_party_modules(ROOT, tops))


def test_packages_import_only_lower_layers():
    bad = order_violations(_repo_imports(), ROOT)
    assert not bad, "imports against the layer order (see LAYERS):\n" + "\n".join(bad)


def test_no_module_cycles():
    cycles = module_cycles(_repo_imports())
    assert not cycles, "modules that import each other:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_imports_of_private_names():
    bad = private_imports(_repo_imports(), ROOT)
    assert not bad, "private names used across modules (make them public where they live):\n" + "\n".join(bad)


def _write(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return first_party_modules(root, {"data_tools", "janus", "showo", "rewards"})


def test_checker_finds_planted_violations(tmp_path):
    """The checks above fail on what they forbid: a deferred upward import, a peer import, a cycle, a private name."""
    modules = _write(
        tmp_path,
        {
            "data_tools/__init__.py": "",
            "data_tools/schema.py": "def f():\n    from rewards.acc import parse\n",
            "janus/__init__.py": "",
            "janus/a.py": "from janus import b\nfrom showo.model import Showo\n",
            "janus/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from rewards import acc\n"
            "from janus.a import _helper\n",
            "showo/__init__.py": "",
            "showo/model.py": "from data_tools.schema import f\n",
            "rewards/__init__.py": "",
            "rewards/acc.py": "from . import parse_tools\n",
            "rewards/parse_tools.py": "",
        },
    )
    imports = module_imports(tmp_path, modules)
    order = order_violations(imports, tmp_path)
    assert order == [
        "data_tools/schema.py:2: data_tools imports rewards.acc (rewards is not below it)",
        "janus/a.py:2: janus imports showo.model (showo is not below it)",
        "janus/b.py:3: janus imports rewards.acc (rewards is not below it)",
    ]
    assert module_cycles(imports) == [["janus.a", "janus.b"]]  # the TYPE_CHECKING import of rewards makes none
    assert private_imports(imports, tmp_path) == ["janus/b.py:4: imports private _helper from janus.a"]
    assert Import("rewards.acc", "rewards.parse_tools", (), 1, False) in imports  # relative import resolved


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        # The pair schema is read by every data tool: formats only, no torch, no rewards, no model package.
        ("data_tools.schema", ("torch", "scipy", "transformers", "rewards", "janus")),
        # The loss is 100 lines of math: importing it must not build the trainer (TRL, transformers, DeepSpeed).
        ("open_r1.trainer.loss", ("open_r1.trainer.pair_grpo_trainer", "trl", "transformers", "janus")),
    ],
)
def test_leaf_modules_import_light(module, forbidden):
    code = f"import sys, {module}; print(' '.join(m for m in {forbidden!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert loaded == [], f"`import {module}` also loads {loaded}"
