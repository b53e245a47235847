"""One namespace and a light core.

The folders the product brief fixes at the repository root are installed as
``nangluc.engine``, ``nangluc.items``, … and nothing else lands at the top
level. ``pip install nangluc`` alone runs the engine, the item bank and the
bank/simulate commands; the service, calibration and simulation reports need
extras, and a command whose extra is missing says which one.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUBPACKAGES = ("engine", "items", "calibration", "service", "simulations")
OLD_IMPORT = re.compile(rf"^[ \t]*(from|import)[ \t]+({'|'.join(SUBPACKAGES)})(\.|[ \t]|$)", re.M)


def _sources() -> list[Path]:
    folders = [*SUBPACKAGES, "src", "tests", "benchmarks"]
    files = [p for folder in folders for p in (ROOT / folder).rglob("*.py")]
    return files + list(ROOT.glob("*.md")) + list(ROOT.glob("*/*.md"))


def test_no_code_or_doc_imports_the_old_top_level_names():
    offenders = []
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        for match in OLD_IMPORT.finditer(text):
            line = text[: match.start()].count("\n") + 1
            offenders.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0).strip()}")
    assert offenders == []


def test_no_nangluc_folder_at_the_root_shadows_the_installed_package():
    # With the working directory on sys.path (pytest, python -m), a root
    # nangluc/ folder would hide nangluc.engine and the other subpackages.
    assert not (ROOT / "nangluc").exists()
    import nangluc
    import nangluc.engine

    assert Path(nangluc.engine.__file__).parent == ROOT / "engine"
    assert Path(nangluc.__file__).parent == ROOT / "src" / "nangluc"


def _modules_after(code: str) -> set[str]:
    script = code + "\nimport sys\nprint(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT.parent
    )
    return set(out.stdout.split())


HEAVY = {"scipy", "litestar", "sqlalchemy", "sqlmodel", "matplotlib", "pyarrow", "dask", "tqdm"}


def test_importing_the_engine_loads_no_heavy_module():
    loaded = _modules_after("import nangluc.engine")
    assert "numpy" in loaded
    assert loaded & HEAVY == set()


def test_cli_help_loads_neither_numpy_nor_the_commands():
    code = textwrap.dedent(
        """
        from nangluc.cli import main
        try:
            main(["--help"])
        except SystemExit:
            pass
        """
    )
    loaded = _modules_after(code)
    assert loaded & (HEAVY | {"numpy"}) == set()


def test_scipy_functions_load_on_first_use_and_match_scipy():
    import numpy as np
    import scipy.special

    from nangluc.engine import special

    x = np.linspace(-40, 40, 81)
    np.testing.assert_array_equal(special.expit(x), scipy.special.expit(x))
    np.testing.assert_array_equal(special.ndtr(x / 8), scipy.special.ndtr(x / 8))
    assert special.ndtri(0.975) == pytest.approx(1.959963984540054)


# --- a wheel in a fresh environment with the core dependencies only ---------

CORE_SESSION = textwrap.dedent(
    """
    from nangluc.engine import CITIZEN_TEST, answer_item, score_test, start_test
    from nangluc.items import load_bank

    document = load_bank()
    bank = document.item_bank
    state = start_test(bank, CITIZEN_TEST, seed=7)
    while not state.finished:
        item = document.item(state.next_item)
        top = len(item.options) - 1 if item.options else 1
        state = answer_item(bank, CITIZEN_TEST, state, state.next_item, response=top)
    result = score_test(bank, state)
    print("ANSWERED", state.answered, "SCORE", round(result.overall.score, 3))
    """
)


@pytest.fixture(scope="module")
def core_env(tmp_path_factory) -> dict[str, Path]:
    """A wheel of this checkout installed into a new venv without any extra."""
    if shutil.which("git") is None:
        pytest.skip("git is needed to copy the checkout")
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    # Build from a copy, so the build leaves nothing in the checkout.
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", "artifacts", "*.db"
        ),
    )
    dist = work / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(dist), str(source)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (wheel,) = dist.glob("nangluc-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    run_dir = work / "elsewhere"  # not the checkout: nothing on sys.path but the venv
    run_dir.mkdir()
    return {
        "wheel": wheel,
        "python": python,
        "nangluc": venv / "bin" / "nangluc",
        "cwd": run_dir,
        "build_log": build.stdout + build.stderr,
    }


def _run(env: dict[str, Path], *args: str, stdin: str | None = None):
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=env["cwd"], input=stdin
    )


@pytest.mark.slow
def test_wheel_holds_one_top_level_package_with_its_data(core_env):
    with zipfile.ZipFile(core_env["wheel"]) as wheel:
        names = wheel.namelist()
    top = {name.split("/")[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"nangluc"}
    for needed in (
        "nangluc/py.typed",
        "nangluc/items/data/bank.json",
        "nangluc/items/data/framework.json",
        "nangluc/items/data/examples/household-safety.json",
        "nangluc/items/data/examples/README.md",
        "nangluc/items/data/tests/citizen.toml",
        "nangluc/items/test-definition.schema.json",
        "nangluc/service/static/index.html",
        "nangluc/service/static/planner.html",
        "nangluc/service/data/wards.json",
        "nangluc/service/static/docs/swagger-init.js",
        "nangluc/service/migrations/env.py",
        "nangluc/service/migrations/script.py.mako",
        "nangluc/service/migrations/versions/0001_initial.py",
        *(f"nangluc/{name}/__init__.py" for name in SUBPACKAGES),
    ):
        assert needed in names
    assert not any(name.startswith(("tests/", "benchmarks/")) for name in names)


@pytest.mark.slow
def test_building_prints_no_license_deprecation(core_env):
    log = core_env["build_log"]
    assert "project.license" not in log
    assert "License classifiers are deprecated" not in log


@pytest.mark.slow
def test_core_install_has_no_server_stack_and_no_top_level_subpackages(core_env):
    listed = _run(core_env, core_env["python"], "-m", "pip", "--version")
    assert listed.returncode != 0  # the venv has no pip: nothing but the wheel and its core deps
    probe = _run(
        core_env,
        core_env["python"],
        "-c",
        "import importlib.util as u; "
        "names = ['engine', 'items', 'calibration', 'service', 'simulations', "
        "'litestar', 'sqlmodel', 'uvicorn', 'psycopg', 'pyarrow', 'matplotlib', 'dask', 'tqdm']; "
        "print(' '.join(n for n in names if u.find_spec(n) is not None))",
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == []
    failed = _run(core_env, core_env["python"], "-c", "import engine")
    assert failed.returncode != 0
    assert "No module named 'engine'" in failed.stderr


@pytest.mark.slow
def test_core_install_runs_a_short_adaptive_test(core_env):
    out = _run(core_env, core_env["python"], "-c", CORE_SESSION)
    assert out.returncode == 0, out.stderr
    answered = int(out.stdout.split()[1])
    score = float(out.stdout.split()[3])
    assert 5 <= answered <= 40
    assert score > 60  # always the top category: a high score


@pytest.mark.slow
def test_core_install_runs_bank_and_simulate_commands(core_env):
    validate = _run(core_env, core_env["nangluc"], "bank", "validate", _shipped_bank(core_env))
    assert validate.returncode == 0, validate.stderr
    simulate = _run(
        core_env, core_env["nangluc"], "simulate", "--examinees", "40", "--no-references"
    )
    assert simulate.returncode == 0, simulate.stderr
    assert '"examinees": 40' in simulate.stdout


@pytest.mark.slow
def test_core_install_scores_paper_forms(core_env):
    """``nangluc score`` needs no extra: the engine and the bank file are enough."""
    forms = core_env["cwd"] / "forms.csv"
    forms.write_text("respondent_id,1.1.01,1.1.02\nan,A,D\nbinh,B,\n", encoding="utf-8")
    out = _run(core_env, core_env["nangluc"], "score", "forms.csv", "--out", "scores.csv")
    assert out.returncode == 0, out.stderr
    lines = (core_env["cwd"] / "scores.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("respondent_id,bank_version,test,answered,overall_score")
    assert [line.split(",")[0] for line in lines[1:]] == ["an", "binh"]


@pytest.mark.slow
def test_core_install_validates_and_simulates_test_definitions(core_env):
    """``nangluc test validate`` and ``simulate --test`` need no extra; the database commands do."""
    out = _run(
        core_env,
        core_env["python"],
        "-c",
        "import nangluc.items.definitions as d; print(d.SHIPPED_DIR / 'an-toan-so.toml')",
    )
    definition = out.stdout.strip()
    validate = _run(core_env, core_env["nangluc"], "test", "validate", definition)
    assert validate.returncode == 0, validate.stderr
    assert "valid — adaptive test an-toan-so version 1: areas 4" in validate.stdout
    simulate = _run(
        core_env, core_env["nangluc"], "simulate", "--test", definition,
        "--examinees", "40", "--no-references",
    )  # fmt: skip
    assert simulate.returncode == 0, simulate.stderr
    summary = json.loads(simulate.stdout)
    assert summary["test"]["name"] == "an-toan-so" and summary["bank"]["areas"] == ["4"]
    listed = _run(core_env, core_env["nangluc"], "test", "list")
    assert listed.returncode == 2 and "pip install 'nangluc[service]'" in listed.stderr


def _shipped_bank(env) -> str:
    out = _run(env, env["python"], "-c", "import nangluc.items as i; print(i.DEFAULT_BANK_PATH)")
    return out.stdout.strip()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (("serve",), "service"),
        (("serve", "--help"), "service"),
        (("calibrate", "responses.csv", "--out", "bank.json"), "calibration"),
        (("simulate", "--examinees", "10", "--no-references", "--report", "out"), "simulations"),
        (("simulate", "--examinees", "10", "--no-references", "--progress"), "simulations"),
    ],
)
def test_a_command_without_its_extra_exits_2_and_names_it(core_env, args, extra):
    out = _run(core_env, core_env["nangluc"], *args)
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"pip install 'nangluc[{extra}]'" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert not (core_env["cwd"] / "out").exists()
    assert not (core_env["cwd"] / "bank.json").exists()


@pytest.mark.slow
def test_installed_wheel_migrates_a_database_with_its_own_revisions(core_env, tmp_path):
    # The wheel alone (no checkout on the path) with the service's dependencies
    # of this environment: `nangluc db upgrade` finds its revisions in the package.
    import os

    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target)]
        + [str(core_env["wheel"])],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    env = {**os.environ, "PYTHONPATH": str(target)}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *args], capture_output=True, text=True, cwd=core_env["cwd"], env=env
        )

    where = run("-c", "import nangluc.service.migrate as m; print(m.MIGRATIONS_DIR)")
    assert where.stdout.strip().startswith(str(target)), where.stdout + where.stderr
    database = f"sqlite:///{tmp_path / 'wheel.db'}"
    upgraded = run("-m", "nangluc", "db", "upgrade", "--database-url", database)
    assert upgraded.returncode == 0, upgraded.stderr
    from nangluc.service.migrate import head_revision

    assert f"upgraded from empty to {head_revision()}" in upgraded.stdout
    status = run("-m", "nangluc", "db", "status", "--database-url", database)
    assert status.returncode == 0 and "(current)" in status.stdout, status.stderr
