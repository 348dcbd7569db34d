"""The image's build steps that can run without a Docker engine: its collectstatic command
line, its COPY sources and its pinned install."""

import re
import tomllib

from tests.conftest import BASE_DIR
from tests.production.conftest import dockerfile_instructions

VENDORED = sorted(
    path.relative_to(BASE_DIR / "static").as_posix()
    for path in (BASE_DIR / "static" / "vendor").rglob("*")
    if path.suffix in {".js", ".css"}
)


def test_the_dockerfile_collectstatic_collects_the_vendored_assets(collected_static):
    result = collected_static.result
    assert result.returncode == 0, result.stdout + result.stderr

    paths = collected_static.manifest["paths"]
    assert VENDORED  # bootstrap and Chart.js
    for name in [*VENDORED, "css/helpdesk.css", "admin/css/base.css"]:
        hashed = paths[name]
        assert hashed != name  # fingerprinted, so it can be cached for a year
        assert (collected_static.root / hashed).is_file(), hashed
        assert (collected_static.root / f"{hashed}.gz").is_file(), hashed  # compressed too


def test_vendored_files_name_only_source_maps_that_are_vendored():
    """A missing map fails collectstatic (ManifestStaticFilesStorage) and so every page."""
    for path in (BASE_DIR / "static").rglob("*"):
        if path.suffix not in {".js", ".css"}:
            continue
        for name in re.findall(r"^[/][/*]# sourceMappingURL=([^\s*]+)", path.read_text(), re.M):
            assert (path.parent / name).is_file(), f"{path} names the missing map {name}"


def test_every_copy_source_exists_and_every_package_is_copied_before_the_install():
    instructions = dockerfile_instructions()
    copies = [args.split() for kind, args in instructions if kind == "COPY"]
    for *sources, _destination in copies:
        for source in sources:
            assert (BASE_DIR / source).exists(), f"COPY {source}: no such file or folder"

    install = next(
        i
        for i, (kind, args) in enumerate(instructions)
        if "pip install" in args and "requirements.lock" in args
    )
    copied_first = {
        source.rstrip("/")
        for kind, args in instructions[:install]
        if kind == "COPY"
        for source in args.split()[:-1]
    }
    pyproject = tomllib.loads((BASE_DIR / "pyproject.toml").read_text())
    packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    for pattern in packages:
        assert pattern.rstrip("*") in copied_first, f"{pattern} is installed but not copied"


def test_the_install_is_pinned_by_the_lock_file():
    runs = [args for kind, args in dockerfile_instructions() if kind == "RUN"]
    installs = [run for run in runs if "pip install" in run]
    project = [run for run in installs if re.search(r"pip install .*(?:^|\s)\.(?:\s|$|\[)", run)]

    assert project, installs
    assert all("-c requirements.lock" in run or "-r requirements.lock" in run for run in project)
    # torch alone comes first, pinned, from the CPU-only index.
    assert any(re.search(r"torch==[\d.]+ --index-url \S+/cpu", run) for run in installs)
