"""asdflow: unlabeled anomalous sound detection as a Snakemake workflow."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("asdflow")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
