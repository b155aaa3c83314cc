"""``secc doctor`` as a field engineer runs it: a process, human or JSON output, exit code."""

from __future__ import annotations

import json
import subprocess
import sys


def secc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "secc", *args], capture_output=True, text=True,
                          timeout=60)


def test_json_findings_and_exit_code(tmp_path, test_pki):
    test_pki.write_secc_files(tmp_path)
    (tmp_path / "mo_root.pem").unlink()
    board = tmp_path / "board.toml"
    board.write_text(f"""
[board]
name = "cli"
evse_id = "DE*PNX*E00001*1"
[plc]
interface = "nosuch0"
[v2g]
plug_and_charge = true
certificate_dir = "{tmp_path}"
""")
    done = secc("doctor", "--board", str(board), "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["result"] == "fail"
    by_check = {f["check"]: f for f in report["findings"]}
    assert by_check["plc.interface"]["status"] == "fail"
    assert by_check["certs.mo_root"]["status"] == "fail"
    assert "MORootCertificate" in by_check["certs.mo_root"]["fix"]
    assert by_check["tls.iso2"]["status"] == "ok"
    assert by_check["bus.broker"]["status"] == "skip"

    human = secc("doctor", "--board", str(board))
    assert human.returncode == 1
    assert "FAIL certs.mo_root" in human.stdout and "fix: from the CSMS: InstallCertificate" in \
        human.stdout


def test_invalid_board_file_exits_2(tmp_path):
    board = tmp_path / "bad.toml"
    board.write_text("[board]\nname = 'x'\nevse_id = 'DE*PNX*E1*1'\nkind = 'teleport'\n")
    done = secc("doctor", "--board", str(board))
    assert done.returncode == 2
    assert "[board].kind" in done.stdout
