"""The README's Python example runs and does what it says."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_first_lines_are_the_two_commands():
    lines = README.read_text().splitlines()
    assert lines[0] == "```sh"
    assert lines[1] == "./install.sh && .venv/bin/marslink run"
    assert lines[2] == "./install.sh --all && .venv/bin/python -m pytest -q"
    assert lines[3] == "```"


def test_readme_link_example_round_trips():
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert block, "README has no python example"
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(compile(block.group(1), "README.md", "exec"), namespace)
    assert namespace["data"] == b"science data " * 3_000
    assert all(r.ok for r in namespace["reports"])
    assert out.getvalue().startswith("True")
