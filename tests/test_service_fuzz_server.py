"""Schemathesis's whole battery against a real ``nangluc serve``: every check, stateful links.

``st run --checks all`` with ``tests/schemathesis.toml`` (two documented
differences between JSON Schema and the service's stricter validation). A
bounded run here (a fixed seed, a few examples per operation); the figures of
a longer run are in the README. The calibration endpoint fits a model per
call and is fuzzed in-process in ``test_service_schema.py``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service_fixtures import ADMIN_KEY, ServerProcess, bank_dict, write_bank

CONFIG = Path(__file__).parent / "schemathesis.toml"


@pytest.mark.slow
def test_schemathesis_all_checks_and_stateful_links_find_nothing(tmp_path: Path) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    if st is None:
        pytest.skip("the schemathesis command is not installed")
    bank = write_bank(tmp_path / "bank.json", bank_dict())
    # One header for every operation: the same secret is configured for both roles
    # here, so the planners' endpoints are fuzzed past their guard too.
    env = {
        "NANGLUC_ADMIN_KEY": ADMIN_KEY,
        "NANGLUC_PLANNER_KEY": ADMIN_KEY,
        "NANGLUC_REPORT_SIMULEES": "1000",
        "NANGLUC_REQUEST_LOG": "0",
    }
    with ServerProcess(f"sqlite:///{tmp_path / 'fuzz.db'}", bank, env=env) as server:
        run = subprocess.run(
            [st, "--no-color", "--config-file", str(CONFIG), "run"]
            + [f"{server.base}/schema/openapi.json", "--checks", "all"]
            + ["-H", f"X-API-Key: {ADMIN_KEY}", "--max-examples", "8", "--seed", "12"]
            + ["--exclude-path-regex", "calibrations", "--request-timeout", "30"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=600,
        )
        output = run.stdout + run.stderr
        assert run.returncode == 0, output[-6000:]
        assert "Stateful" in output and re.search(r"\d+ generated, \d+ passed", output), output[
            -3000:
        ]
        assert "Traceback" not in server.output()
