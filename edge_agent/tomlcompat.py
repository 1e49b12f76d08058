"""tomllib on Python 3.11+, the tomli backport on 3.10."""

try:
    import tomllib  # noqa: F401
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]  # noqa: F401
