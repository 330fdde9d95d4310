"""The README's Python example runs as written (docs that drift are worse than none)."""

from __future__ import annotations

import re
import subprocess
import sys


def test_readme_python_example_runs(repo_root, tmp_path):
    readme = (repo_root / "README.md").read_text()
    code = re.search(r"## Python API\n\n```python\n(.*?)```", readme, re.S).group(1)
    (tmp_path / "examples").symlink_to(repo_root / "examples")
    (tmp_path / "example.py").write_text(code)
    proc = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # What Whisper tiny.en heard (no subtitles ship with the sample): "At night the keeper count seven ships."
    assert lines[0].startswith("At night the keeper") and lines[0].endswith("seven ships. C answered")
    assert "act/transcribe ['tool_result']" in lines


def test_readme_opens_with_the_two_commands(repo_root):
    readme = (repo_root / "README.md").read_text().splitlines()
    block = readme[readme.index("```bash") + 1 : readme.index("```", readme.index("```bash") + 1)]
    assert [line.split()[0:2] for line in block] == [["make", "demo"], ["make", "test"]]
    ci = (repo_root / ".ci" / "run").read_text()
    assert "\nmake test\n" in ci
