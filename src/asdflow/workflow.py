"""Glue shared by the workflow_scripts/ adapters: logging to the rule's log file, JSON I/O.

Adapters stay ~20 lines: they unpack ``snakemake.input/output/params`` and call package
functions inside :func:`step_logging`, which sends log records (and progress bars) both to the
rule's ``log:`` file and to the terminal, and records a failing step's traceback in the log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Iterator, TextIO

__all__ = ["step_logging", "write_json", "read_json"]


class _Tee:
    """A text stream that writes to several streams (stderr + the rule's log file)."""

    def __init__(self, *streams: TextIO) -> None:
        self._streams = streams

    def write(self, text: str) -> int:
        for s in self._streams:
            s.write(text)
        return len(text)

    def flush(self) -> None:
        for s in self._streams:
            s.flush()

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def step_logging(log_path: str | Path | None, step: str) -> Iterator[logging.Logger]:
    """Log a workflow step to ``log_path`` and stderr; log the traceback if the step fails."""
    logger = logging.getLogger("asdflow")
    root = logging.getLogger()
    old_stderr = sys.stderr
    log_file = None
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        log_file = open(log_path, "w", buffering=1)
        sys.stderr = _Tee(old_stderr, log_file)  # type: ignore[assignment]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    start = time.perf_counter()
    logger.info("%s: started", step)
    try:
        yield logger
    except BaseException:
        logger.exception("%s: failed after %.1f s", step, time.perf_counter() - start)
        raise
    else:
        logger.info("%s: done in %.1f s", step, time.perf_counter() - start)
    finally:
        root.removeHandler(handler)
        sys.stderr = old_stderr
        if log_file is not None:
            log_file.close()


def write_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON atomically (tmp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)
    return path


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc
