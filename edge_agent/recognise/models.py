"""The model manifest (`models/manifest.toml`, installed as `edge_agent/models/`) and sha256 checks of the
files it lists.

A file comes from one of two origins: `repository` (trained by `training/` and committed beside the
manifest, installed with the package) or `wheel` (inside a pinned PyPI package, where `package` and
`path` say where).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from edge_agent.errors import ModelError
from edge_agent.tomlcompat import tomllib

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
DEFAULT_MANIFEST = MODELS_DIR / "manifest.toml"
ORIGINS = ("repository", "wheel")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    role: str
    package: str
    version: str
    path: str
    sha256: str
    license: str
    source: str
    description: str = ""
    origin: str = "wheel"
    folder: Path = MODELS_DIR  # where a repository file sits: beside its manifest

    def file(self) -> Path:
        """Where the file is; a wheel's package is located, not imported."""
        if self.origin == "repository":
            return self.folder / self.path
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(
                f"model {self.name}: package {self.package}=={self.version} is not installed (run scripts/setup)"
            )
        return Path(list(spec.submodule_search_locations)[0]) / self.path


def load_manifest(path: Path = DEFAULT_MANIFEST) -> dict[str, ModelSpec]:
    """role -> ModelSpec."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ModelError(f"{path}: model manifest not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"{path}: not valid TOML: {exc}") from None
    models = {}
    for i, entry in enumerate(data.get("model", [])):
        try:
            spec = ModelSpec(**entry, folder=Path(path).resolve().parent)
        except TypeError as exc:
            raise ModelError(f"{path}: model[{i}]: {exc}") from None
        if spec.origin not in ORIGINS:
            raise ModelError(f"{path}: model[{i}] ({spec.name}): origin must be one of {', '.join(ORIGINS)}")
        models[spec.role] = spec
    return models


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_model(spec: ModelSpec) -> Path:
    """The model's path once its origin's version and its sha256 are what the manifest says."""
    if spec.origin == "wheel":
        try:
            installed = importlib.metadata.version(spec.package)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != spec.version:
            raise ModelError(
                f"model {spec.name}: manifest pins {spec.package}=={spec.version}, installed is {installed} (run scripts/setup)"
            )
    path = spec.file()
    if not path.is_file():
        raise ModelError(f"model {spec.name}: file {path} is missing")
    actual = sha256_of(path)
    if actual != spec.sha256:
        raise ModelError(f"model {spec.name}: {path} has sha256 {actual}, manifest says {spec.sha256}")
    return path


def require(models: dict[str, ModelSpec], role: str, path: Path) -> ModelSpec:
    if role not in models:
        raise ModelError(f"{path}: no model with role {role!r} (found {', '.join(sorted(models)) or 'none'})")
    return models[role]
