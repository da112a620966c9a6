"""asdflow: unlabeled anomalous sound detection as a Snakemake workflow."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("asdflow")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"


def code_version(*parts: str) -> str:
    """``<version>+<hash>`` of the package source files under ``parts`` (modules or subpackages).

    Rules pass this as a param so that Snakemake reruns a step when the code it depends on
    changes (Snakemake tracks script files, not imported package code).
    """
    import hashlib
    from pathlib import Path

    root = Path(__file__).parent
    digest = hashlib.sha1()
    for part in parts:
        target = root / part
        files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
        if not files or not all(f.exists() for f in files):
            raise FileNotFoundError(f"asdflow.code_version: no source at {target}")
        for f in files:
            digest.update(f.relative_to(root).as_posix().encode())
            digest.update(f.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:10]}"
