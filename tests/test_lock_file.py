"""requirements.lock, which the Docker image installs from, checked against pyproject.toml.

When a test here fails, the lock is stale: refresh it with the command in `REFRESH_COMMAND`
(also in docs/operations.md's "Docker" section and the lock's own header) and commit both files.
"""

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).resolve().parent.parent

REFRESH_COMMAND = (
    "uv pip compile pyproject.toml --generate-hashes --no-strip-extras"
    " --python-version 3.11 --python-platform x86_64-unknown-linux-gnu"
    " --output-file requirements.lock"
)

# What the lock is resolved for: the Dockerfile's python:3.11-slim on linux x86_64.
IMAGE_ENVIRONMENT = {
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
}

# How a uv or pip-compile annotation names the project itself: "replay-catalog (pyproject.toml)".
PROJECT_ANNOTATION = re.compile(r"\(pyproject\.toml\)$")
SHA256_OPTION = re.compile(r"--hash=sha256:[0-9a-f]{64}")


@dataclass
class LockedPackage:
    """One pinned entry of the lock: its requirement line, hashes and what needs it ("# via")."""

    requirement: Requirement
    hashes: list[str] = field(default_factory=list)
    needed_by: set[NormalizedName] = field(default_factory=set)
    needed_by_project: bool = False

    @property
    def pinned_version(self) -> str | None:
        """The exact version pinned with `==`, or None when the line pins nothing exactly."""
        specifiers = list(self.requirement.specifier)
        if (
            len(specifiers) == 1
            and specifiers[0].operator == "=="
            and "*" not in str(specifiers[0])
        ):
            return specifiers[0].version
        return None


def read_lock() -> dict[NormalizedName, LockedPackage]:
    """Parse requirements.lock as uv and pip-compile write it, "# via" annotations included."""
    locked: dict[NormalizedName, LockedPackage] = {}
    current: LockedPackage | None = None
    path = ROOT / "requirements.lock"
    if not path.exists():
        pytest.fail(stale(["it is missing"]))
    for line in path.read_text().splitlines():
        text = line.strip().removesuffix("\\").strip()
        if not text:
            continue
        if not line[0].isspace():
            if text.startswith("#"):
                current = None  # the header
                continue
            requirement_text, _, options = text.partition(" --hash")
            current = LockedPackage(Requirement(requirement_text))
            locked[canonicalize_name(current.requirement.name)] = current
            text = "--hash" + options if options else ""
        if current is None or not text:
            continue
        if text.startswith("--hash"):
            current.hashes.extend(text.split())
            continue
        assert text.startswith("#"), f"unexpected line in requirements.lock: {line!r}"
        source = re.sub(r"^via\b", "", text.lstrip("#").strip()).strip()
        if PROJECT_ANNOTATION.search(source):
            current.needed_by_project = True
        elif source:
            current.needed_by.add(canonicalize_name(Requirement(source).name))
    return locked


def runtime_requirements() -> list[Requirement]:
    """pyproject.toml's runtime dependencies that apply inside the image (dev extras left out)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(text) for text in project["dependencies"]]
    return [
        requirement
        for requirement in requirements
        if requirement.marker is None or requirement.marker.evaluate(IMAGE_ENVIRONMENT)
    ]


def stale(problems: list[str]) -> str:
    """The failure message: what disagrees, and the command that brings the lock up to date."""
    listed = "\n".join(f"  - {problem}" for problem in problems)
    return (
        f"requirements.lock is stale:\n{listed}\nRefresh it (repository root):\n  {REFRESH_COMMAND}"
    )


def test_every_runtime_dependency_is_pinned_in_the_lock_at_a_version_it_allows() -> None:
    locked = read_lock()
    problems = []
    for requirement in runtime_requirements():
        package = locked.get(canonicalize_name(requirement.name))
        if package is None:
            problems.append(f"{requirement} is not in the lock")
            continue
        version = package.pinned_version
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement} is locked as {package.requirement}")
        missing_extras = requirement.extras - package.requirement.extras
        if missing_extras:
            problems.append(
                f"{requirement} is locked without its extras {sorted(missing_extras)}"
                f" ({package.requirement})"
            )
    assert not problems, stale(problems)


def test_every_locked_package_is_pinned_exactly_and_checked_by_hash() -> None:
    locked = read_lock()
    assert locked, stale(["it pins nothing"])
    problems = []
    for package in locked.values():
        if package.pinned_version is None:
            problems.append(f"{package.requirement} is not pinned with ==")
        if package.requirement.marker is not None:
            problems.append(f"{package.requirement} has a marker: the lock is for the image alone")
        if not package.hashes:
            problems.append(f"{package.requirement} has no --hash")
        problems.extend(
            f"{package.requirement} has a malformed {option}"
            for option in package.hashes
            if not SHA256_OPTION.fullmatch(option)
        )
    assert not problems, stale(problems)


def test_nothing_in_the_lock_is_left_over_from_dependencies_pyproject_no_longer_has() -> None:
    locked = read_lock()
    needed = {canonicalize_name(requirement.name) for requirement in runtime_requirements()}
    # Follow the "# via" graph outwards from pyproject.toml's own dependencies: a package is
    # needed when something needed depends on it; a stale "via pyproject.toml" counts for nothing.
    grew = True
    while grew:
        reachable = {
            name
            for name, package in locked.items()
            if name not in needed and package.needed_by & needed
        }
        needed |= reachable
        grew = bool(reachable)
    orphans = sorted(set(locked) - needed)
    assert not orphans, stale(
        [f"{name} is locked but nothing in pyproject.toml needs it" for name in orphans]
    )


def test_the_image_installs_exactly_the_locked_versions() -> None:
    build_stage = (ROOT / "Dockerfile").read_text().split("\nFROM ", 2)[1]
    installs = [line for line in build_stage.splitlines() if "pip install" in line]
    assert "COPY requirements.lock " in build_stage
    assert any("--require-hashes -r requirements.lock" in line for line in installs), installs
    # The project itself comes last and brings no dependencies of its own choosing.
    assert installs[-1].endswith(" --no-deps ."), installs
    assert all("--require-hashes" in line or "--no-deps" in line for line in installs), installs
