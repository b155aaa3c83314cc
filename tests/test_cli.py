import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_secc_info_prints_version():
    out = subprocess.run([sys.executable, "-m", "secc", "info"], capture_output=True, text=True,
                         check=True, cwd=REPO)
    assert out.stdout.startswith("pysecc ")


def test_secc_without_command_prints_help_and_fails():
    out = subprocess.run([sys.executable, "-m", "secc"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 2 and "COMMAND" in out.stdout


def test_readme_opens_with_the_two_commands():
    readme = (REPO / "README.md").read_text()
    head = readme[:1500]
    assert "make demo" in head and "make test" in head
    makefile = (REPO / "Makefile").read_text()
    for target in ("install:", "test:", "demo:", "bench:", "lint:"):
        assert f"\n{target}" in makefile
    assert "make test" in (REPO / ".ci" / "run").read_text()
