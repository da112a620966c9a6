"""The repository documents itself (issue 14).

* No tracked text file refers to files outside the repository (the working notes a user does not
  get): every such reference is named as ``file:line``.
* Every citation ``docs/<file>.md §N[.N...]`` (also ``§A–B`` ranges and ``§A and §B`` lists)
  names an existing file under ``docs/`` and an existing numbered heading in it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Iterable, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
SELF = "tests/test_docs.py"

#: Substrings that point outside the repository.
FORBIDDEN = ("/work/shared", "shared/notes", "notes/formats", "notes/reference", "../shared", "seeds/")

_NUM = r"\d+(?:\.\d+)*"
#: ``docs/formats.md §1.3``, ``docs/formats.md`` §2.2, ``docs/formats.md §1.3–1.6 and §3.1–3.3``.
CITATION = re.compile(
    r"docs/(?P<file>[\w.-]+\.md)[`'\"]*"
    r"(?:\s*(?P<refs>§\s*" + _NUM + r"(?:(?:\s*[–-]\s*§?\s*|,\s*§\s*|\s+and\s+§\s*)" + _NUM + r")*))?"
)
HEADING = re.compile(r"^#{1,6}\s+(" + _NUM + r")\.?\s")


def _text(path: Path) -> str | None:
    """UTF-8 text of a file, or None for binary (NUL byte) or undecodable files."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def repository_text_files(root: Path = ROOT) -> list[tuple[str, str]]:
    """``(relative path, text)`` of every tracked text file (plus ``docs/*.md``, tracked or not),
    without this test file."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    names = {n for n in out.decode("utf-8").split("\0") if n}
    names |= {p.relative_to(root).as_posix() for p in (root / "docs").glob("*.md")}
    files = []
    for rel in sorted(names - {SELF}):
        path = root / rel
        if not path.is_file():  # deleted in the working tree, or a submodule
            continue
        text = _text(path)
        if text is not None:
            files.append((rel, text))
    return files


def outside_references(files: Iterable[tuple[str, str]]) -> list[str]:
    """``file:line: 'token' in: <line>`` for every line that contains a FORBIDDEN token."""
    hits = []
    for rel, text in files:
        for lineno, line in enumerate(text.splitlines(), start=1):
            for token in FORBIDDEN:
                if token in line:
                    hits.append(f"{rel}:{lineno}: {token!r} in: {line.strip()[:160]}")
    return hits


def section_numbers(text: str) -> set[str]:
    """Numbers of the numbered headings of a markdown text (``## 1. X`` → ``1``, ``### 1.2 Y`` → ``1.2``)."""
    return {m.group(1) for line in text.splitlines() if (m := HEADING.match(line))}


def citations(text: str) -> Iterator[tuple[int, str, list[str]]]:
    """``(line, docs file, [section numbers])`` of every ``docs/<file>.md [§...]`` mention."""
    for lineno, line in enumerate(text.splitlines(), start=1):
        for m in CITATION.finditer(line):
            refs = m.group("refs") or ""
            yield lineno, m.group("file"), re.findall(_NUM, refs)


def bad_citations(files: Iterable[tuple[str, str]], docs: dict[str, str]) -> list[str]:
    """``file:line: why`` for every citation of a missing docs file or a missing section.
    ``docs`` maps a docs file name (``formats.md``) to its text."""
    numbers = {name: section_numbers(text) for name, text in docs.items()}
    bad = []
    for rel, text in files:
        for lineno, name, refs in citations(text):
            if name not in numbers:
                bad.append(f"{rel}:{lineno}: docs/{name} does not exist")
                continue
            for ref in refs:
                if ref not in numbers[name]:
                    bad.append(f"{rel}:{lineno}: docs/{name} has no section §{ref} "
                               f"(it has {sorted(numbers[name], key=_key)})")
    return bad


def _key(num: str) -> tuple[int, ...]:
    return tuple(int(x) for x in num.split("."))


def _docs(root: Path = ROOT) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted((root / "docs").glob("*.md"))}


@pytest.fixture(scope="module")
def files() -> list[tuple[str, str]]:
    return repository_text_files()


# --------------------------------------------------------------------------- the repository


def test_docs_exist():
    for name in ("formats.md", "reference.md"):
        text = (ROOT / "docs" / name).read_text(encoding="utf-8")
        assert section_numbers(text), f"docs/{name} has no numbered section headings"


def test_no_references_outside_the_repository(files):
    assert files, "git ls-files listed no text files"
    hits = outside_references(files)
    assert not hits, "references to files outside the repository:\n" + "\n".join(hits)


def test_docs_citations_resolve(files):
    cited = [(rel, n) for rel, text in files for _, n, _ in citations(text)]
    assert any(rel.startswith("src/") for rel, _ in cited), "no docs/ citation found in src/"
    bad = bad_citations(files, _docs())
    assert not bad, "citations of missing docs sections:\n" + "\n".join(bad)


def test_required_citations_point_into_docs(files):
    """The modules that implement the documented formats cite the sections they follow."""
    text = dict(files)
    for rel, needle in (
        ("src/asdflow/io/dcase.py", "docs/formats.md §1.3"),
        ("src/asdflow/io/dcase.py", "docs/formats.md §1.1"),
        ("src/asdflow/io/external.py", "docs/formats.md §3"),
        ("src/asdflow/metrics.py", "docs/formats.md §2.2"),
    ):
        assert needle in text[rel], f"{rel} does not cite {needle}"


def test_readme_points_to_the_docs(files):
    readme = dict(files)["README.md"]
    assert "docs/formats.md" in readme and "docs/reference.md" in readme


# --------------------------------------------------------------------------- the checkers catch violations


@pytest.mark.parametrize("token", FORBIDDEN)
def test_outside_reference_checker_names_file_and_line(token):
    files = [("a.py", "x = 1\n"), ("b/c.md", f"line one\nsee {token}x.md here\n")]
    hits = outside_references(files)
    assert len(hits) == 1 and hits[0].startswith("b/c.md:2:"), hits


def test_citation_checker_flags_missing_file_and_section():
    docs = {"formats.md": "# T\n\n## 1. A\n\n### 1.1 B\n\n### 1.2 C\n\n## 2. D\n"}
    files = [
        ("ok.py", 'see docs/formats.md §1.1 and ``docs/formats.md`` §2, docs/formats.md §1.1–1.2\n'),
        ("ok2.py", "see docs/formats.md (no section)\n"),
        ("bad.py", "a\nsee docs/formats.md §1.3)\n"),
        ("bad2.py", "see docs/formats.md §1.1 and §3.1\n"),
        ("bad3.py", "see docs/nothere.md §1\n"),
    ]
    bad = bad_citations(files, docs)
    assert [b.split(": ")[0] for b in bad] == ["bad.py:2", "bad2.py:1", "bad3.py:1"], bad
    assert "§1.3" in bad[0] and "§3.1" in bad[1] and "does not exist" in bad[2]
