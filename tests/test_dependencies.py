"""The design's dependency rules, checked on the imports of every module (AST, not grep).

* the vocabulary (context, usage, task specs, verify, progress, window, folding) imports no tool, policy, model or loop code;
* tools never import the loop (graph, agent, cli, replay, eval, serving) nor the policies;
* model/ imports no policies, tools, traces or loop;
* traces/ imports only the vocabulary (and traces/ itself);
* policies/ never import the loop, and of the tools only the Tool protocol and the side-query seam
  (``mcr.tools.base``, ``mcr.tools.side``): the evidence checks reach a policy as the verifier the
  loop hands it, never by import;
* language/ (the question reader) imports only the vocabulary (and language/ itself);
* no module imports itself back through others at import time (no import cycles).

An import inside ``if TYPE_CHECKING:`` counts too: a rule is about what a
package knows, not only about what it loads.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# folder -> import namespace: pyproject's package-dir (top-level folders only; subpackages follow their parent)
_PACKAGE_DIR = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
PACKAGES = {folder: name for name, folder in _PACKAGE_DIR.items() if "/" not in folder}
VOCABULARY = {"mcr.context", "mcr.usage", "mcr.task", "mcr.verify", "mcr.progress", "mcr.window", "mcr.folding"}
LOOP = ("mcr.graph", "mcr.agent", "mcr.cli", "mcr.replay", "mcr.eval", "mcr.serving", "mcr.mcp_server",
        "mcr.checkpoints", "mcr.threads")


def _modules() -> dict[str, Path]:
    found = {}
    for folder, namespace in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([namespace, *parts])
            if folder == "mcr" and parts and parts[0] in set(PACKAGES) - {"mcr"}:
                continue  # not a real folder under mcr/
            found[name] = path
    return found


MODULES = _modules()


def imports_of(path: Path) -> set[str]:
    """Every ``mcr.*`` module a file imports (absolute names)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("mcr")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mcr") and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES}
    return out


def _under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(module_prefix: str, forbidden, allowed=None) -> list[str]:
    bad = []
    for name, path in MODULES.items():
        if not _under(name, (module_prefix,)):
            continue
        for imported in imports_of(path):
            if _under(imported, forbidden) or (allowed is not None and not _under(imported, allowed)):
                bad.append(f"{path.relative_to(ROOT)} imports {imported}")
    return bad


def test_the_module_list_is_complete():
    assert {"mcr.graph", "mcr.tools.base", "mcr.model.runtime.session", "mcr.traces.recorder",
            "mcr.policies.base", "mcr.tools.evidence", "mcr.tools.evidence.checks"} <= set(MODULES)


@pytest.mark.parametrize("vocab", sorted(VOCABULARY))
def test_the_vocabulary_imports_only_the_vocabulary(vocab):
    assert MODULES.get(vocab), vocab
    bad = [i for i in imports_of(MODULES[vocab]) if not _under(i, VOCABULARY)]
    assert not bad, f"{vocab} imports {bad}"


def test_tools_never_import_the_loop_or_the_policies():
    assert not violations("mcr.tools", (*LOOP, "mcr.policies"))


def test_model_imports_no_policies_tools_traces_or_loop():
    assert not violations("mcr.model", (*LOOP, "mcr.policies", "mcr.tools", "mcr.traces"))


POLICY_MAY_USE_TOOLS = ("mcr.tools.base", "mcr.tools.side")


def test_policies_never_import_the_loop_nor_the_tools_beyond_their_protocol():
    """The offline policy judges options with the verifier the loop hands it, not one it builds."""
    bad = [v for v in violations("mcr.policies", LOOP)]
    for name, path in MODULES.items():
        if _under(name, ("mcr.policies",)):
            bad += [f"{path.relative_to(ROOT)} imports {i}" for i in imports_of(path)
                    if _under(i, ("mcr.tools",)) and not _under(i, POLICY_MAY_USE_TOOLS)]
    assert not bad, bad


def test_traces_import_only_the_vocabulary():
    assert not violations("mcr.traces", (), allowed=(*VOCABULARY, "mcr.traces"))


def test_language_imports_only_the_vocabulary():
    """The question reader is imported by tools, policies, the verifier and the loop: it imports none of them."""
    assert {"mcr.language.question", "mcr.language.lexicon", "mcr.language.similarity"} <= set(MODULES)
    assert not violations("mcr.language", (), allowed=(*VOCABULARY, "mcr.language"))


def test_the_checker_sees_a_violation(tmp_path):
    """The rules can fail: imports of the loop are found, also lazy and type-checking ones."""
    bad = tmp_path / "bad.py"
    bad.write_text("import mcr.agent\nif False:\n    from mcr.graph import build_graph\n"
                   "def f():\n    from mcr.eval import runner\n")
    found = imports_of(bad)
    assert {"mcr.agent", "mcr.graph", "mcr.eval", "mcr.eval.runner"} <= found
    assert all(_under(name, LOOP) for name in found)


# --------------------------------------------------------------------------- #
# Import cycles
# --------------------------------------------------------------------------- #


def import_time_imports(path: Path) -> set[str]:
    """The ``mcr.*`` modules a file imports when it is imported: module level, not in functions nor
    under ``if TYPE_CHECKING:`` (those cannot make an import cycle)."""
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for sub in child.orelse:
                    visit(ast.Module(body=[sub], type_ignores=[]))
                continue
            if isinstance(child, ast.Import):
                out.update(a.name for a in child.names if a.name.startswith("mcr"))
            elif isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("mcr") and not child.level:
                subs = {f"{child.module}.{a.name}" for a in child.names} & set(MODULES)
                out.update(subs or {child.module})
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {name for name in out if name in MODULES}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (or a module importing itself): Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph.get(v, ()):
                cycles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return cycles


def test_no_import_cycles():
    graph = {name: import_time_imports(path) for name, path in MODULES.items()}
    assert not import_cycles(graph), import_cycles(graph)


def test_the_cycle_checker_finds_a_cycle(tmp_path):
    """The cycle test can fail: a two-module loop and a self-import are found; lazy and type-only imports are not edges."""
    assert import_cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert import_cycles({"a": {"a"}}) == [["a"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []
    lazy = tmp_path / "lazy.py"
    lazy.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import mcr.graph\n"
                    "def f():\n    import mcr.agent\nimport mcr.context\n")
    assert import_time_imports(lazy) == {"mcr.context"}
