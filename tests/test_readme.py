"""The README's Python example runs as written (docs that drift are worse than none).

What the example prints starts with what Whisper tiny.en heard, and that text
is the model's, not ours: on one machine "At night the keeper count seven
ships.", on another (an AMD EPYC, same pins) "at night the keeper count seven
ships.". The checks therefore normalise case and punctuation and bound the
word error rate; what is ours (the chosen option, the stop reason, the steps)
is checked exactly.
"""

from __future__ import annotations

import re
import subprocess
import sys

from mcr.model.media.audio import normalize_words, word_error_rate

#: What the sample's night narration says (examples/media/sample.json); Whisper's words are compared to it.
NIGHT_SENTENCE = "At night the keeper counts seven ships."
MAX_WER = 0.3  # tiny.en wrote "count" for "counts" (1 of 7 words, 0.14); two such slips still pass


def check_example_output(stdout: str) -> None:
    """The README example's assertions, on its printed output (raises AssertionError)."""
    lines = stdout.splitlines()
    assert lines, "the example printed nothing"
    words = normalize_words(lines[0])
    assert words[-2:] == ["c", "answered"], lines[0]  # the option and the stop reason: ours, exact
    heard = " ".join(words[:-2])
    assert word_error_rate(NIGHT_SENTENCE, heard) <= MAX_WER, lines[0]
    assert "seven" in words, lines[0]  # the option C was chosen from it
    assert "act/transcribe ['tool_result']" in lines


def test_readme_python_example_runs(repo_root, tmp_path):
    readme = (repo_root / "README.md").read_text()
    code = re.search(r"## Python API\n\n```python\n(.*?)```", readme, re.S).group(1)
    (tmp_path / "examples").symlink_to(repo_root / "examples")
    (tmp_path / "example.py").write_text(code)
    proc = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    check_example_output(proc.stdout)


def test_the_example_check_accepts_whisper_in_any_case_and_rejects_a_wrong_answer():
    """The same checks pass whatever casing and punctuation Whisper writes, and still catch wrong output."""
    rest = "\n['e6'] /x/traces/episode-1.jsonl\nobserve ['observation', 'instruction']\nact/transcribe ['tool_result']\n"
    for heard in ("At night the keeper count seven ships.", "at night the keeper count seven ships.",
                  "AT NIGHT, THE KEEPER COUNTS SEVEN SHIPS", "At night the keeper counts 7 ships!"):
        check_example_output(f"{heard} C answered{rest}")
    for wrong in ("At night the keeper count seven ships. B answered",  # another option
                  "In the morning a farmer planned to sow barley. C answered",  # another sentence
                  "At night the keeper count seven ships. C max_steps"):  # not answered
        try:
            check_example_output(wrong + rest)
        except AssertionError:
            continue
        raise AssertionError(f"the check accepted {wrong!r}")


def test_readme_opens_with_the_two_commands(repo_root):
    readme = (repo_root / "README.md").read_text().splitlines()
    block = readme[readme.index("```bash") + 1 : readme.index("```", readme.index("```bash") + 1)]
    assert [line.split()[0:2] for line in block] == [["make", "demo"], ["make", "test"]]
    ci = (repo_root / ".ci" / "run").read_text()
    assert "\nmake test\n" in ci


def test_the_lmms_eval_command_comes_with_the_install_line_that_runs_it(repo_root):
    """`make` installs lmms-eval --no-deps (its model interface only), so its command line needs another venv:
    the README gives that venv's install lines right before the command, with the Makefile's lmms-eval pin."""
    readme = (repo_root / "README.md").read_text()
    block = next(b for b in re.findall(r"```bash\n(.*?)```", readme, re.S) if "-m lmms_eval" in b)
    lines = block.splitlines()
    run = next(i for i, line in enumerate(lines) if "-m lmms_eval --model mcr_agent" in line)
    pin = re.search(r"lmms-eval==([\d.]+)", (repo_root / "Makefile").read_text()).group(1)
    installs = [line for line in lines[:run] if "pip install" in line and f"lmms-eval=={pin}" in line]
    assert installs and all("--no-deps" not in line for line in installs), block
    venv = installs[0].split("/bin/pip")[0].split()[-1]
    assert f"{venv}/bin/python -m lmms_eval" in lines[run]  # run in the venv it built
    # In make's venv the command line indeed does not start, which is why the README says so.
    proc = subprocess.run([sys.executable, "-c", "import lmms_eval.__main__"], capture_output=True, text=True,
                          timeout=300)
    if proc.returncode != 0:
        missing = re.search(r"No module named '([\w.]+)'", proc.stderr)
        assert missing, proc.stderr[-2000:]
        assert "ModuleNotFoundError" in readme and "--no-deps" in readme
