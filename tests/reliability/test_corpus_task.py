"""Bad task files (mcr/task.py's loader): a TaskFileError naming the file, line, key and fix; `mcr run` exits 2.
In a suite, one bad task is an error row and the other tasks still run (`mcr eval` and `mcr run` exit 2).
"""

from __future__ import annotations

import json
import os

import pytest
import yaml
from mcr.tools.errors import PluginError

from mcr.task import MAX_QUESTION_CHARS, TaskFileError, load_tasks

PLUGIN_RAISES = "raise RuntimeError('the GPU driver is missing')\n"


@pytest.fixture
def bundle(tmp_path, corpus):
    """A task folder with a real clip in it."""
    folder = tmp_path / "bundle"
    folder.mkdir()
    corpus.write_clip(folder / "clip.mp4")
    return folder


def _check(path, corpus, tmp_path, says: tuple[str, ...], key: str | None = None, line: int | None = None):
    """The loader's error and the CLI's exit code and message for one bad task file."""
    with pytest.raises(TaskFileError) as caught:
        load_tasks(path)
    err = caught.value
    message = str(err)
    assert str(path) in message and all(s in message for s in says), message
    if key is not None:
        assert err.key == key, message
    if line is not None:
        assert err.line == line, message
    code, _, stderr = corpus.mcr("run", str(path), "--workdir", str(tmp_path / "w"), "-q")
    assert code == 2 and "Traceback" not in stderr and path.name in stderr, stderr
    return message


def _text(folder, name, text):
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


CASES = [  # name, YAML text (after the video line), what the message says, key, line
    ("a syntax error", "question: [How long\nname: x\n", ("malformed YAML",), None, None),
    ("an unknown key", "question: How long?\nbudgte: {max_steps: 3}\n", ("unknown key", "did you mean 'budget'"),
     "budgte", 3),
    ("a wrong type", "question: How long?\nbudget: {max_steps: many}\n", ("valid integer",), "budget.max_steps", 3),
    ("a huge value (max_steps: 10**12)", "question: How long?\nbudget: {max_steps: 1000000000000}\n",
     ("less than or equal to 100000", "budgets end episodes"), "budget.max_steps", 3),
    ("a missing field (question)", "name: nameless\n", ("required key is missing",), "question", None),
    ("a plugin path that does not exist", "question: How long?\nplugins: [my_tools.py]\n",
     ("tool plugin not found", "my_tools.py"), "plugins.0", 3),
]


@pytest.mark.parametrize("name,body,says,key,line", CASES, ids=[c[0] for c in CASES])
def test_bad_task_file(name, body, says, key, line, bundle, corpus, ledger, tmp_path):
    path = _text(bundle, "task.yaml", "video: clip.mp4\n" + body)
    message = _check(path, corpus, tmp_path, says, key, line)
    ledger.case("task_yaml", name, outcome="TaskFileError; mcr run exit 2", message=message)


def test_video_outside_the_task_folder_through_dotdot(tmp_path, corpus, ledger):
    """Policy: a relative video stays inside the task's folder unless `media_root:` opts in."""
    corpus.write_clip(tmp_path / "elsewhere.mp4")
    tasks = tmp_path / "tasks"
    path = corpus.write_task(tasks / "task.yaml", "../elsewhere.mp4")
    message = _check(path, corpus, tmp_path, ("outside", "media_root: ..", "absolute path"), key="video")
    allowed = corpus.write_task(tasks / "allowed.yaml", "../elsewhere.mp4", media_root="..")
    assert load_tasks(allowed)[0].video == (tmp_path / "elsewhere.mp4").resolve()
    assert corpus.mcr("run", str(allowed), "--workdir", str(tmp_path / "w"), "-q")[0] == 0
    ledger.case("task_yaml", "a video outside the task's folder through ..",
                outcome="TaskFileError; mcr run exit 2 (media_root: .. opts in, then exit 0)", message=message)


def test_video_outside_the_task_folder_through_a_symlink(tmp_path, corpus, ledger):
    private = tmp_path / "private"
    private.mkdir()
    corpus.write_clip(private / "home.mp4")
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    os.symlink(private / "home.mp4", tasks / "clip.mp4")
    path = corpus.write_task(tasks / "task.yaml", "clip.mp4")
    message = _check(path, corpus, tmp_path, ("resolves to", "symbolic link", "media_root"), key="video")
    opted = corpus.write_task(tasks / "opted.yaml", "clip.mp4", media_root=str(private))
    assert load_tasks(opted)[0].video == (private / "home.mp4").resolve()
    absolute = corpus.write_task(tasks / "absolute.yaml", str(private / "home.mp4"))  # written out: explicit
    assert load_tasks(absolute)[0].video == (private / "home.mp4").resolve()
    ledger.case("task_yaml", "a video outside the task's folder through a symlink",
                outcome="TaskFileError; mcr run exit 2 (media_root or an absolute path opts in)", message=message)


def test_a_plugin_that_raises_at_import(bundle, corpus, ledger, tmp_path):
    (bundle / "broken_tools.py").write_text(PLUGIN_RAISES)
    path = corpus.write_task(bundle / "task.yaml", "clip.mp4", plugins=["broken_tools.py"])
    tasks = load_tasks(path)  # the file is valid; the plugin runs when the agent is built
    from mcr.tools import registry_for_task

    with pytest.raises(PluginError) as caught:
        registry_for_task(tasks[0])
    message = str(caught.value)
    assert "broken_tools.py" in message and "RuntimeError" in message and "GPU driver" in message
    assert "fix the plugin" in message
    code, _, stderr = corpus.mcr("run", str(path), "--workdir", str(tmp_path / "w"), "-q")
    assert code == 2 and "broken_tools.py" in stderr and "Traceback" not in stderr, stderr
    ledger.case("task_yaml", "a plugin that raises at import", outcome="PluginError; mcr run exit 2", message=message)


def test_a_10_mb_question(bundle, corpus, ledger, tmp_path):
    path = _text(bundle, "task.yaml", "video: clip.mp4\nquestion: " + "why " * (10 * 2**20 // 4) + "\n")
    message = _check(path, corpus, tmp_path, ("the limit is 8 MB", "shorten the question"))
    ledger.case("task_yaml", "a 10 MB question", outcome="TaskFileError before parsing; mcr run exit 2",
                message=message)


def test_a_question_over_the_limit_in_a_small_file(bundle, corpus, ledger, tmp_path):
    path = _text(bundle, "task.yaml", "video: clip.mp4\nquestion: " + "x" * (MAX_QUESTION_CHARS + 1) + "\n")
    message = _check(path, corpus, tmp_path, ("at most 100000 characters", "ask a question"), key="question")
    ledger.case("task_yaml", f"a question of {MAX_QUESTION_CHARS + 1:,} characters",
                outcome="TaskFileError; mcr run exit 2", message=message)


def test_a_question_longer_than_the_offline_window_allows(bundle, corpus, ledger, tmp_path):
    """Issue 23 item 3: a 10,000-character question overflowed SmolLM2's window with a traceback; the task's
    limit now comes from the policy's window (8,192 characters for the offline default's 8,192 tokens)."""
    path = _text(bundle, "task.yaml", "video: clip.mp4\nquestion: " + "why " * 2500 + "\n")
    message = _check(path, corpus, tmp_path, ("8,192 tokens", "at most 8,192 characters", "shorten it"),
                     key="question", line=2)
    ledger.case("task_yaml", "a 10,000-character question for the offline policy (8K window)",
                outcome="TaskFileError before the model loads; mcr run exit 2", message=message)


def test_a_question_within_the_character_limit_but_over_the_window_ends_context_exhausted(bundle, corpus, ledger,
                                                                                         tmp_path):
    """8,000 digits pass the character limit but are 8,000 SmolLM2 tokens: the run ends with stop reason
    context_exhausted and a message saying what to shorten (exit 1, no traceback), checkpoint and trace intact."""
    path = _text(bundle, "task.yaml", "video: clip.mp4\nquestion: '" + "0123456789" * 800 + "'\n")
    code, out, err = corpus.mcr("run", str(path), "--workdir", str(tmp_path / "w"))
    said = " ".join((out + err).split())
    assert code == 1 and "Traceback" not in out + err, out + err
    assert "stop reason: context_exhausted" in said and "shorten the question" in said, said
    traces = list((tmp_path / "w").rglob("*.jsonl"))
    assert traces and '"stop_reason": "context_exhausted"' in traces[0].read_text().replace('":"', '": "')
    ledger.case("task_yaml", "a question of 8,000 digits (8,000 tokens) for the offline policy",
                outcome="stop reason context_exhausted; mcr run exit 1", message=said[:300])


# --------------------------------------------------------------------------- #
# Suites: one bad task is an error row, the others run
# --------------------------------------------------------------------------- #


def _suite(bundle, corpus, bad: dict) -> object:
    good = corpus.task_dict("clip.mp4")
    return corpus.write_suite(bundle / "suite.yaml", [{**good, "name": "first"}, bad, {**good, "name": "last"}])


SUITE_CASES = [
    ("a missing video", {"video": "nowhere.mp4"}, "TaskFileError", "video file not found"),
    ("an unknown key", {"questoin": "typo"}, "TaskFileError", "unknown key"),
    ("a corrupt video", {"video": "corrupt.mp4"}, "VideoOpenFailure", "Invalid data"),
    ("a plugin that raises at import", {"plugins": ["broken_tools.py"]}, "PluginError", "GPU driver"),
]


@pytest.mark.parametrize("name,change,error_type,says", SUITE_CASES, ids=[c[0] for c in SUITE_CASES])
def test_one_bad_task_in_a_suite(name, change, error_type, says, bundle, corpus, ledger, tmp_path):
    (bundle / "corrupt.mp4").write_bytes(b"\x00" * 64 + (bundle / "clip.mp4").read_bytes()[64:])
    (bundle / "broken_tools.py").write_text(PLUGIN_RAISES)
    suite = _suite(bundle, corpus, {**corpus.task_dict("clip.mp4"), "name": "bad", **change})
    out = tmp_path / "eval"
    code, _, stderr = corpus.mcr("eval", str(suite), "--out", str(out), "-q", "--no-report")
    assert code == 2, stderr
    records = {r["name"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert set(records) == {"first", "bad", "last"}
    assert records["first"]["status"] == records["last"]["status"] == "done"
    assert records["first"]["answer"] == "2.0 s" and records["last"]["accepted"]
    bad = records["bad"]
    assert bad["status"] == "error" and bad["error_type"] == error_type and says in bad["error"], bad
    assert "error in bad" in stderr and says in stderr

    code, _, stderr = corpus.mcr("run", str(suite), "--workdir", str(tmp_path / "w"), "-q")  # the same for mcr run
    assert code == 2 and "error in task bad" in stderr and "Traceback" not in stderr, stderr
    runs = list((tmp_path / "w" / "traces").glob("*.jsonl"))
    assert {p.name.split("-")[0] for p in runs} == {"first", "last"}
    ledger.case("task_yaml", f"a suite with {name} in one of three tasks",
                outcome=f"error row ({error_type}), the other 2 tasks answered; mcr eval and mcr run exit 2",
                message=bad["error"])


def test_the_yaml_loader_stays_safe(bundle, corpus, ledger, tmp_path):
    """A Python object tag is not constructed (yaml.safe_load): it is a malformed-YAML error."""
    path = _text(bundle, "task.yaml", "video: clip.mp4\nquestion: !!python/object/apply:os.system ['touch pwned']\n")
    message = _check(path, corpus, tmp_path, ("malformed YAML",))
    assert not (bundle / "pwned").exists() and not (tmp_path / "pwned").exists()
    ledger.case("task_yaml", "a python/object tag", outcome="TaskFileError (never constructed); mcr run exit 2",
                message=message)
    assert yaml  # the loader under test is PyYAML's safe one
