"""The design's dependency rules, checked on the imports of every module (AST, not grep).

* the vocabulary (context, usage, task specs, verify, progress) imports no tool, policy, model or loop code;
* tools never import the loop (graph, agent, cli, replay, eval, serving) nor the policies;
* model/ imports no policies, tools, traces or loop;
* traces/ imports only the vocabulary (and traces/ itself).

An import inside ``if TYPE_CHECKING:`` counts too: a rule is about what a
package knows, not only about what it loads.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# folder -> import namespace (pyproject's package-dir)
PACKAGES = {"mcr": "mcr", "tools": "mcr.tools", "policies": "mcr.policies", "model": "mcr.model", "traces": "mcr.traces"}
VOCABULARY = {"mcr.context", "mcr.usage", "mcr.task", "mcr.verify", "mcr.progress"}
LOOP = ("mcr.graph", "mcr.agent", "mcr.cli", "mcr.replay", "mcr.eval", "mcr.serving", "mcr.mcp_server",
        "mcr.checkpoints")


def _modules() -> dict[str, Path]:
    found = {}
    for folder, namespace in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([namespace, *parts])
            if folder == "mcr" and parts and parts[0] in ("tools", "policies", "model", "traces"):
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
            "mcr.policies.base"} <= set(MODULES)


@pytest.mark.parametrize("vocab", sorted(VOCABULARY))
def test_the_vocabulary_imports_only_the_vocabulary(vocab):
    assert MODULES.get(vocab), vocab
    bad = [i for i in imports_of(MODULES[vocab]) if not _under(i, VOCABULARY)]
    assert not bad, f"{vocab} imports {bad}"


def test_tools_never_import_the_loop_or_the_policies():
    assert not violations("mcr.tools", (*LOOP, "mcr.policies"))


def test_model_imports_no_policies_tools_traces_or_loop():
    assert not violations("mcr.model", (*LOOP, "mcr.policies", "mcr.tools", "mcr.traces"))


def test_traces_import_only_the_vocabulary():
    assert not violations("mcr.traces", (), allowed=(*VOCABULARY, "mcr.traces"))


def test_the_checker_sees_a_violation(tmp_path):
    """The rules can fail: imports of the loop are found, also lazy and type-checking ones."""
    bad = tmp_path / "bad.py"
    bad.write_text("import mcr.agent\nif False:\n    from mcr.graph import build_graph\n"
                   "def f():\n    from mcr.eval import runner\n")
    found = imports_of(bad)
    assert {"mcr.agent", "mcr.graph", "mcr.eval", "mcr.eval.runner"} <= found
    assert all(_under(name, LOOP) for name in found)
