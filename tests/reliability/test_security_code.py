"""Nothing runs code or opens the network unless the user said so.

* **Unsafe loaders**: every module of the package is parsed (AST, not grep, so
  comments and strings do not count) for calls that can run code while
  reading data: ``yaml.load`` without a SafeLoader, ``yaml.unsafe_load`` /
  ``full_load``, ``pickle`` / ``dill`` / ``cloudpickle`` / ``joblib`` loads,
  ``torch.load`` without ``weights_only=True``, ``numpy.load(allow_pickle=True)``,
  ``eval`` / ``exec``, and a literal ``trust_remote_code=True``.
* **trust_remote_code**: a checkpoint folder whose ``config.json`` has
  ``auto_map`` (code shipped with the weights) is refused at the CLI with exit 2
  and a message naming the setting that allows it; its code never runs.
* **Web search** stays off unless the task sets ``web: true``; no socket is
  opened (watched with a CPython audit hook, not a mock).
"""

from __future__ import annotations

import ast
import importlib
import json
import socket
import sys
import threading
from pathlib import Path

import pytest
import yaml

from mcr.context import Context, Instruction
from mcr.tools.base import ToolContext
from mcr.tools.errors import ToolFailure
from mcr.tools.search import SearchTool

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = {"mcr": "mcr", "tools": "mcr.tools", "policies": "mcr.policies", "model": "mcr.model", "traces": "mcr.traces"}
SAMPLE = ROOT / "examples" / "media" / "sample.mp4"

PICKLE_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "_pickle", "shelve", "marshal"}


def _modules():
    for folder, package in PACKAGE_DIRS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            name = ".".join([package, *rel.parts]).removesuffix(".__init__")
            yield path, name


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _safe_yaml_loader(module_name: str, node: ast.AST | None) -> bool:
    """`Loader=` names yaml.SafeLoader / CSafeLoader or a subclass of it (resolved in the real module)."""
    if node is None:
        return False
    dotted = _dotted(node)
    value = yaml if dotted.startswith("yaml.") else importlib.import_module(module_name)
    for part in dotted.removeprefix("yaml.").split("."):
        value = getattr(value, part, None)
    return isinstance(value, type) and issubclass(value, yaml.SafeLoader)


# The one reviewed exception: bytes are unpickled only after their HMAC-SHA256 verifies under this user's
# own 0600 key (the video index's resumable build state, which PySceneDetect's detectors make pickle-only);
# tests/tools/test_video_index.py proves a crafted or tampered state is refused before any unpickling.
SEALED = {"tools/video_index/sealed.py: pickle.loads"}


def unsafe_calls() -> list[str]:
    return [f for f in _unsafe_calls() if f.split(":", 1)[0] + ":" + f.split(":", 2)[2] not in SEALED]


def _unsafe_calls() -> list[str]:
    found = []
    for path, module_name in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        imported_pickle = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.Import)
                           for a in n.names if a.name.split(".")[0] in PICKLE_MODULES}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLE_MODULES:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: from {node.module} import ...")
            if not isinstance(node, ast.Call):
                continue
            name = _dotted(node.func)
            where = f"{path.relative_to(ROOT)}:{node.lineno}: {name}"
            head, _, attr = name.rpartition(".")
            if name in ("yaml.load", "yaml.load_all") and not _safe_yaml_loader(module_name, _keyword(node, "Loader")):
                found.append(where + " without a SafeLoader")
            elif name in ("yaml.unsafe_load", "yaml.unsafe_load_all", "yaml.full_load", "yaml.full_load_all"):
                found.append(where)
            elif head.split(".")[0] in imported_pickle | PICKLE_MODULES and attr in ("load", "loads", "Unpickler", "open"):
                found.append(where)
            elif name == "torch.load":
                weights_only = _keyword(node, "weights_only")
                if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                    found.append(where + " without weights_only=True")
            elif name in ("np.load", "numpy.load"):
                allow = _keyword(node, "allow_pickle")
                if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
                    found.append(where + " with allow_pickle")
            elif name in ("eval", "exec", "builtins.eval", "builtins.exec"):
                found.append(where)
            trust = _keyword(node, "trust_remote_code")
            if isinstance(trust, ast.Constant) and trust.value is True:
                found.append(where + " with a literal trust_remote_code=True")
    return found


def test_the_package_uses_no_unsafe_loader(ledger):
    found = unsafe_calls()
    modules = sum(1 for _ in _modules())
    ledger.case("security", f"AST scan of {modules} modules for unsafe loaders",
                outcome="none found" if not found else f"{len(found)} found", message="; ".join(found))
    assert found == []


def test_the_scan_catches_what_it_looks_for(tmp_path, monkeypatch):
    """The scan is not vacuous: a module with each unsafe call is reported, line by line."""
    folder = tmp_path / "traces"
    folder.mkdir()
    (folder / "bad.py").write_text(
        "import pickle, torch, yaml\nimport numpy as np\n"
        "pickle.loads(b'')\n"
        "torch.load('x.pt')\n"
        "torch.load('x.pt', weights_only=False)\n"
        "yaml.load('a: 1', Loader=yaml.Loader)\n"
        "yaml.full_load('a: 1')\n"
        "np.load('x.npy', allow_pickle=True)\n"
        "eval('1')\n"
        "f(trust_remote_code=True)\n"
        "yaml.load('a: 1', Loader=yaml.SafeLoader)\n"  # safe: not reported
        "torch.load('x.pt', weights_only=True)\n")  # safe: not reported
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE_DIRS", {"traces": "fake_traces"})
    found = unsafe_calls()
    assert [f.split(":")[1] for f in found] == ["3", "4", "5", "6", "7", "8", "9", "10"]


# --------------------------------------------------------------------------- #
# trust_remote_code
# --------------------------------------------------------------------------- #


def _remote_code_checkpoint(folder: Path, marker: Path) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "mcr_evil_custom", "architectures": ["EvilForCausalLM"],
        "auto_map": {"AutoConfig": "configuration_evil.EvilConfig", "AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"},
    }))
    code = f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
    (folder / "configuration_evil.py").write_text(code)
    (folder / "modeling_evil.py").write_text(code)
    (folder / "model.safetensors").write_bytes(b"")  # present, so the refusal is about the code, not the weights
    return folder


@pytest.mark.parametrize("setting", [None, False, "false", "yes", 1])
def test_a_checkpoint_that_ships_code_is_refused_at_the_cli(tmp_path, capsys, ledger, setting):
    from mcr.cli import main

    marker = tmp_path / "code-ran"
    checkpoint = _remote_code_checkpoint(tmp_path / "ckpt", marker)
    settings = {"model": str(checkpoint)} | ({} if setting is None else {"trust_remote_code": setting})
    task = tmp_path / "task.yaml"
    task.write_text(yaml.safe_dump({"name": "remote", "video": str(SAMPLE), "question": "What happens?",
                                    "policy": {"name": "internvideo3", "settings": settings}}))
    code = main(["run", str(task), "--workdir", str(tmp_path / "w"), "-q"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "trust_remote_code: true" in err and "auto_map" in err and str(checkpoint) in err
    assert not marker.exists()
    ledger.case("security", f"trust_remote_code {setting!r}: checkpoint with auto_map",
                outcome="CLI exit 2; its code did not run", message=err.replace("mcr: error: ", ""))


def test_mcr_serve_refuses_a_checkpoint_that_ships_code(tmp_path, capsys, ledger):
    from mcr.cli import main

    marker = tmp_path / "code-ran"
    checkpoint = _remote_code_checkpoint(tmp_path / "ckpt", marker)
    code = main(["serve", str(checkpoint), "--port", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "auto_map" in err and "mcr serve never runs checkpoint code" in err, err
    assert not marker.exists()
    ledger.case("security", "mcr serve: checkpoint with auto_map", outcome="exit 2; its code did not run", message=err)


# --------------------------------------------------------------------------- #
# Web search
# --------------------------------------------------------------------------- #

_NET = threading.local()
_CONNECTS: list[str] = []


def _audit(event: str, args) -> None:
    if event in ("socket.connect", "socket.getaddrinfo", "socket.sendto") and getattr(_NET, "watch", False):
        _CONNECTS.append(f"{event} {args[1:] if event == 'socket.connect' else args[:2]}")


sys.addaudithook(_audit)  # audit hooks cannot be removed; this one only records while a test watches


@pytest.mark.parametrize("web", [None, False, "false", "true", "yes", 1, {"on": True}])
@pytest.mark.parametrize("scope", ["web", "all"])
def test_web_search_stays_off_unless_the_task_enables_it(ledger, tmp_path, scope, web):
    ctx = Context([Instruction(id="e0", text="How many ships?")])
    settings = {"corpus": []} | ({} if web is None else {"web": web})
    (tmp_path / "notes.txt").write_text("Seven ships were counted on the night watch.")
    settings["corpus"] = [str(tmp_path / "notes.txt")]
    tc = ToolContext(context=ctx, workdir=tmp_path, settings=settings)
    _CONNECTS.clear()
    _NET.watch = True
    try:
        with pytest.raises(ToolFailure) as err:
            SearchTool()({"query": "ships", "scope": scope}, tc)
    finally:
        _NET.watch = False
    assert err.value.error_type == "web_disabled" and "web: true" in str(err.value)
    assert _CONNECTS == []
    ledger.case("security", f"web search scope={scope}, web={web!r}", outcome="ToolFailure web_disabled; no socket opened",
                message=str(err.value))


def test_the_network_watch_sees_a_connection():
    """The audit hook is not vacuous: a real (refused) connection to localhost is recorded."""
    _CONNECTS.clear()
    _NET.watch = True
    try:
        with socket.socket() as s:
            s.settimeout(0.5)
            try:
                s.connect(("127.0.0.1", 9))
            except OSError:
                pass
    finally:
        _NET.watch = False
    assert any(c.startswith("socket.connect") for c in _CONNECTS)
