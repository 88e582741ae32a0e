"""Append-only numeric columns with bounded memory, for a run's records (the monitor's timeline).

A long run records a few numbers per PLFRAME for hours; kept as Python lists that grows without
bound (about 40 bytes per number). :class:`Column` keeps the most recent values in a fixed
numpy buffer and appends older ones to a file, so the recorder's memory stays flat however
long the run; :meth:`Column.values` reads everything back (at the end of the run, for the
report). :class:`NameColumn` stores strings (MODCOD names) as codes in a :class:`Column`.
"""

from __future__ import annotations

import os

import numpy as np

#: Values a column keeps in memory (8 bytes each); the older half goes to disk when it fills.
CHUNK = 1 << 15


class Column:
    """float64 values, appended one at a time; the most recent in memory, the rest in a file.

    Parameters
    ----------
    path : str or None
        File for the values pushed out of memory (created on first use, removed by
        :meth:`close`); None keeps everything in memory.
    chunk : int
        Values kept in memory; when it fills, the older half is written to ``path``.
    """

    def __init__(self, path: str | None = None, chunk: int = CHUNK):
        if chunk < 2:
            raise ValueError(f"chunk must be >= 2 values; got {chunk}")
        self.path = path
        self._buf = np.empty(chunk if path else 1024, np.float64)
        self._n = 0  # values in _buf
        self._on_disk = 0
        self.total = 0.0  # running sum of every value appended

    def append(self, v: float) -> None:
        """Add one value."""
        if self._n == self._buf.size:
            self._make_room()
        self._buf[self._n] = v
        self._n += 1
        if v == v:  # NaN does not count in the sum
            self.total += v

    def _make_room(self) -> None:
        if self.path is None:  # in memory: grow
            self._buf = np.concatenate([self._buf, np.empty(self._buf.size, np.float64)])
            return
        half = self._n // 2
        with open(self.path, "ab") as f:
            f.write(self._buf[:half].tobytes())
        self._on_disk += half
        self._buf[: self._n - half] = self._buf[half : self._n]
        self._n -= half

    def __len__(self) -> int:
        return self._on_disk + self._n

    def __getitem__(self, i: int) -> float:
        """The value at index ``i`` counted from the end (-1: the latest); only recent ones."""
        if not -self._n <= i < 0:
            raise IndexError(f"index must be in -{self._n}..-1 (the values in memory); got {i}")
        return float(self._buf[self._n + i])

    def recent(self) -> np.ndarray:
        """The values still in memory (the latest ``chunk / 2`` at least), oldest first (a copy)."""
        return self._buf[: self._n].copy()

    def values(self) -> np.ndarray:
        """Every value appended, oldest first."""
        mem = self._buf[: self._n]
        if not self._on_disk:
            return mem.copy()
        disk = np.fromfile(self.path, np.float64, count=self._on_disk)
        if disk.size != self._on_disk:
            raise OSError(f"{self.path}: {disk.size} values on disk, expected {self._on_disk}")
        return np.concatenate([disk, mem])

    def __array__(self, dtype=None, copy=None):
        v = self.values()
        return v if dtype is None else v.astype(dtype)

    def close(self) -> None:
        """Remove the file (the values on disk are gone after this)."""
        if self.path and os.path.exists(self.path):
            os.remove(self.path)
        self._on_disk = 0


class NameColumn:
    """Strings (a small set of names, e.g. MODCODs), stored as codes in a :class:`Column`."""

    def __init__(self, path: str | None = None, chunk: int = CHUNK):
        self._codes = Column(path, chunk)
        self._names: list[str] = []
        self._index: dict[str, int] = {}

    def append(self, name: str) -> None:
        """Add one name."""
        code = self._index.get(name)
        if code is None:
            code = self._index[name] = len(self._names)
            self._names.append(name)
        self._codes.append(code)

    def __len__(self) -> int:
        return len(self._codes)

    def __getitem__(self, i: int) -> str:
        """The name at index ``i`` from the end (-1: the latest)."""
        return self._names[int(self._codes[i])]

    def values(self) -> np.ndarray:
        """Every name appended, oldest first (a numpy array of str)."""
        table = np.asarray(self._names if self._names else [""])
        return table[self._codes.values().astype(np.int64)]

    def __iter__(self):
        return iter(self.values().tolist())

    def __array__(self, dtype=None, copy=None):
        v = self.values()
        return v if dtype is None else v.astype(dtype)

    def close(self) -> None:
        """Remove the file of codes."""
        self._codes.close()
