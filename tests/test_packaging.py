"""The installed package (the wheel the image is built from) holds every file the service reads."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _data_files(package: str) -> set[Path]:
    base = ROOT / "src" / package
    return {
        path.relative_to(base)
        for path in base.rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts
    }


def test_every_template_and_static_file_is_package_data() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_data = pyproject["tool"]["setuptools"]["package-data"]
    for package, patterns in package_data.items():
        base = ROOT / "src" / package
        shipped = {path.relative_to(base) for pattern in patterns for path in base.glob(pattern)}
        missing = sorted(str(path) for path in _data_files(package) - shipped)
        assert missing == [], f"{package}: not in [tool.setuptools.package-data]: {missing}"
