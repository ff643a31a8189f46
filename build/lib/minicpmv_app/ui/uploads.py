"""Private temp files for uploads, named by us: a user-supplied file name never becomes a path."""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path

from ..media import kinds


class UploadFolder:
    """A per-session temp folder (mode 0700); removed on ``clear()`` and when the session object is collected."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="minicpmv-uploads-"))
        self._count = 0
        self._names: dict[str, str] = {}  # our path -> the person's file name, for display only
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.path), True)

    def save(self, name: str, data: bytes) -> Path:
        # Only the extension of the user's name is kept, and only a known one: decoders look at it.
        suffix = Path(name or "").suffix.lower()
        if suffix not in kinds.SUFFIXES:
            suffix = ".bin"
        self._count += 1
        target = self.path / f"upload-{self._count:04d}{suffix}"
        target.write_bytes(data)
        self._names[str(target)] = Path(name or "").name or target.name
        return target

    def shown_name(self, path) -> str:
        """The name the person gave the file (never used as a path), or the file's own."""
        return self._names.get(str(path), Path(path).name)

    def discard(self, path) -> None:
        """Remove one file of ours (a refused upload); paths outside the folder are left alone."""
        target = Path(path)
        if target.parent == self.path:
            target.unlink(missing_ok=True)

    def clear(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
