"""The environment check of notebook 00: which of the course's packages are missing or differ
from the pinned versions, said in plain words."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from importlib import metadata

DISTRIBUTION = "dpfl-course"
PYTHON = (3, 11)


@dataclass(frozen=True)
class PackageStatus:
    """One row of the check: the package, the version the course pins, the one installed."""

    name: str
    pinned: str
    installed: str | None

    @property
    def ok(self) -> bool:
        return self.installed == self.pinned


def pinned_requirements(distribution: str = DISTRIBUTION) -> dict[str, str]:
    """The exact pins (``name==version``) of the installed course package, by package name.

    Extras (the test tools) are left out: a learner does not need them.
    """
    try:
        requires = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        return {}
    pins = {}
    for line in requires:
        if "extra ==" in line:
            continue
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)", line)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def check_environment(pins: dict[str, str] | None = None) -> list[PackageStatus]:
    """Compare installed versions with the pins; one :class:`PackageStatus` per package."""
    pins = pinned_requirements() if pins is None else pins
    rows = []
    for name, version in sorted(pins.items()):
        installed = _installed(name)
        # torch's CPU wheel reports "2.13.0+cpu": the local tag is the build, not the version.
        if installed is not None and installed.split("+")[0] == version:
            installed = version
        rows.append(PackageStatus(name, version, installed))
    return rows


def environment_report(rows: list[PackageStatus] | None = None, *,
                       python: tuple[int, int] | None = None,
                       fix_hint: str = "From the course folder, run: python3 course.py lab") -> str:
    """The check as plain sentences: one line per problem, or one line saying all is well.

    >>> environment_report([PackageStatus("numpy", "2.4.6", "2.4.6")], python=(3, 11))
    'Python 3.11: good.\\nAll 1 course packages are installed at the pinned versions.'
    >>> print(environment_report([PackageStatus("opacus", "1.6.0", None)], python=(3, 12)))
    Python 3.12: the course is tested on Python 3.11; other versions may print different numbers.
    opacus is missing (the course needs 1.6.0).
    From the course folder, run: python3 course.py lab
    """
    python = tuple(sys.version_info[:2]) if python is None else tuple(python)
    rows = check_environment() if rows is None else rows
    lines = []
    if python == PYTHON:
        lines.append(f"Python {python[0]}.{python[1]}: good.")
    else:
        lines.append(f"Python {python[0]}.{python[1]}: the course is tested on Python "
                     f"{PYTHON[0]}.{PYTHON[1]}; other versions may print different numbers.")
    if not rows:
        lines.append("The course package is not installed, so its pinned versions are unknown.")
        lines.append(fix_hint)
        return "\n".join(lines)
    problems = []
    for row in rows:
        if row.installed is None:
            problems.append(f"{row.name} is missing (the course needs {row.pinned}).")
        elif not row.ok:
            problems.append(f"{row.name} {row.installed} is installed; the course is tested with "
                            f"{row.pinned}. It will probably work, but numbers may differ slightly.")
    if problems:
        lines.extend(problems)
        lines.append(fix_hint)
    else:
        lines.append(f"All {len(rows)} course packages are installed at the pinned versions.")
    return "\n".join(lines)
