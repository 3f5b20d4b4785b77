"""pycontainers: declarative containers as systemd units, with its own OCI runtime.

The import package is assembled from the repository's top-level folders (see
pyproject.toml): ``reconciler``, ``units``, ``runtime`` and ``distribution``. This
module stays empty of imports so that ``pycontainers-runtime`` starts fast.
"""

__version__ = "0.1.0"
