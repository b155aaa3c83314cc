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


def test_secc_run_on_a_missing_interface_is_one_clear_line_and_exit_2(tmp_path):
    board = tmp_path / "b.toml"
    board.write_text('[board]\nname = "t"\nkind = "sim"\nevse_id = "DE*PYS*E1*1"\n'
                     '[plc]\ninterface = "nosuchif0"\nstart_at_sdp = true\n'
                     '[v2g]\ntls = "none"\n')
    out = subprocess.run([sys.executable, "-m", "secc", "run", "--board", str(board)],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 2
    assert "secc run: cannot start on nosuchif0" in out.stderr
    assert "Traceback" not in out.stderr
