"""Writing files so that a failure (a full disk, a lost mount) leaves the previous version
intact, no temporary file behind, and an error that names the file that could not be written."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from ganlab.core.errors import GanlabError

#: How a temporary file beside ``<name>`` is named (``.<name>.tmp``); cleaned up on failure.
TMP_PATTERN = ".*.tmp"


class WriteFailed(GanlabError):
    """A file of the run could not be written; ``path`` is the file, ``reason`` why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"cannot write {self.path}: {reason}")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def tmp_path(path: Path) -> Path:
    """The temporary file that :func:`atomic_path` writes before renaming it to ``path``."""
    return path.with_name(f".{path.name}.tmp")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; after the block, flush it to disk and rename it
    over ``path`` (atomic on POSIX). If the block or the rename fails, the temporary file is
    removed, ``path`` keeps its old content, and an :class:`OSError` becomes
    :class:`WriteFailed` naming ``path``."""
    path = Path(path)
    tmp = tmp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise WriteFailed(path, _reason(exc)) from None
        raise


def write_bytes(path: str | Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    """Replace ``path`` by ``text`` atomically (see :func:`atomic_path`)."""
    write_bytes(path, text.encode())


def append_text(path: str | Path, text: str) -> None:
    """Append ``text`` to ``path``; on failure the file is cut back to its old length (no
    partial line) and :class:`WriteFailed` names it."""
    path = Path(path)
    size = path.stat().st_size if path.exists() else None
    try:
        with open(path, "a") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError):
            if size is None:
                path.unlink()
            else:
                os.truncate(path, size)
        raise WriteFailed(path, _reason(exc)) from None


def remove_temporaries(*folders: str | Path) -> list[Path]:
    """Delete the temporary files that :func:`atomic_path` left in ``folders`` (a process
    killed between writing and renaming); returns what was removed."""
    removed = []
    for folder in folders:
        for tmp in Path(folder).glob(TMP_PATTERN) if Path(folder).is_dir() else []:
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed
