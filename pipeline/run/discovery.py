"""Which files of the given paths are recordings, and the output folder name of each.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from toetwitch.pipeline.errors import UserError
from toetwitch.pipeline.run.jobs import BatchJob


def discover_recordings(paths: Sequence[str | Path], exclude: Path | None = None) -> list[Path]:
    """Expand files and folders (searched recursively) into recording files, sorted, no duplicates.

    A file given by name is always taken (a wrong format becomes that file's failure); in a
    folder only files that ``toetwitch.drivers.readers.is_recording_file`` accepts are taken, hidden files
    and folders (names starting with ``.``) are skipped, and so is anything under ``exclude``
    (the output folder, so that a second run does not pick up its own outputs).

    Raises
    ------
    UserError (exit code 2)
        A path does not exist, or no recording was found.
    """
    from toetwitch.drivers.readers import is_recording_file

    exclude_r = exclude.resolve() if exclude is not None else None
    found: list[Path] = []
    seen: set[Path] = set()

    def take(p: Path) -> None:
        r = p.resolve()
        if r not in seen:
            seen.add(r)
            found.append(p)

    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise UserError(f"{raw}: no such file or folder", 2)
        if p.is_file():
            take(p)
            continue
        in_folder: list[Path] = []
        for root, dirs, files in os.walk(p):
            root_p = Path(root)
            if exclude_r is not None and _is_within(root_p.resolve(), exclude_r):
                dirs[:] = []
                continue
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for f in files:
                fp = root_p / f
                if not f.startswith(".") and is_recording_file(fp):
                    in_folder.append(fp)
        for fp in sorted(in_folder, key=lambda q: q.as_posix()):
            take(fp)
    if not found:
        from toetwitch.drivers.readers import RECORDING_SUFFIXES

        raise UserError(
            "no recordings found in " + ", ".join(str(p) for p in paths)
            + f" (looked for files ending in {', '.join(sorted(RECORDING_SUFFIXES))})",
            2,
        )
    return found


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def output_names(files: Sequence[Path]) -> list[str]:
    """The output folder name of each file, in the same order; deterministic and unique.

    The name is the file name without its extension. When several files share that stem
    (compared case-insensitively, for case-insensitive file systems), each gets the path from
    the deepest folder they share, with ``__`` between the parts: ``a/night.edf`` and
    ``b/night.edf`` become ``a__night`` and ``b__night``. If that still collides (``night.csv``
    and ``night.edf`` in one folder), the extension is appended: ``night_csv``, ``night_edf``.
    Any clash left over gets ``~2``, ``~3``, ... in path order.
    """
    stems = [_stem(f) for f in files]
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(stems):
        groups.setdefault(s.casefold(), []).append(i)
    names = list(stems)
    for members in groups.values():
        if len(members) < 2:
            continue
        resolved = [Path(os.path.abspath(files[i])) for i in members]  # links keep their own folder
        common = Path(os.path.commonpath([str(r.parent) for r in resolved]))
        candidates = []
        for i, r in zip(members, resolved, strict=True):
            parts = r.parent.relative_to(common).parts
            candidates.append("__".join((*parts, stems[i])))
        folded = [c.casefold() for c in candidates]
        for k, i in enumerate(members):
            if folded.count(folded[k]) > 1:
                suffix = Path(files[i]).suffix.lstrip(".").lower() or "file"
                candidates[k] = f"{candidates[k]}_{suffix}"
            names[i] = candidates[k]
    # Last resort: anything still clashing (including with another file's plain stem).
    used: set[str] = set()
    order = sorted(range(len(files)), key=lambda i: Path(os.path.abspath(files[i])).as_posix())
    for i in order:
        base, n = names[i], 1
        while names[i].casefold() in used:
            n += 1
            names[i] = f"{base}~{n}"
        used.add(names[i].casefold())
    return names


def _stem(path: Path) -> str:
    name = Path(path).name
    for suffix in sorted(_recording_suffixes(), key=len, reverse=True):
        if name.lower().endswith(suffix.lower()) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return Path(path).stem or name


def _recording_suffixes() -> tuple[str, ...]:
    try:
        from toetwitch.drivers.readers import RECORDING_SUFFIXES
    except ImportError:  # pragma: no cover - readers are part of the package
        return ()
    return tuple(RECORDING_SUFFIXES)


def plan_jobs(paths: Sequence[str | Path], out_dir: Path | None = None) -> list[BatchJob]:
    """Discover the recordings under ``paths`` and give each its output folder name."""
    files = discover_recordings(paths, exclude=out_dir)
    names = output_names(files)
    return [
        BatchJob(index=i, path=str(f), name=n, size_bytes=_size(f))
        for i, (f, n) in enumerate(zip(files, names, strict=True))
    ]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
