"""The package version, in this one place: pyproject.toml reads it (hatch's dynamic version), the
package exports it and the User-Agent is built from it."""

__version__ = "0.1.0"
