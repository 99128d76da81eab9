"""A binary file over an iterator of byte chunks: a blob streamed from a registry, ``docker save``'s output.

``read(n)`` returns ``n`` bytes until the end (a chunked upload cuts the stream where it asks, whatever
sizes the chunks came in), ``read()`` the rest. Closing the file closes the iterator, so a generator
that holds an HTTP response releases it. The source's own exceptions (``errors``) become ``OSError``,
which is what readers of files (``tarfile``, ``shutil``) expect.
"""

from __future__ import annotations

import io
from collections.abc import Iterable


def chunk_reader(
    chunks: Iterable[bytes], *, errors: tuple[type[BaseException], ...] = (), what: str = "the stream"
) -> io.BufferedReader:
    """A buffered binary file reading ``chunks`` in order; ``errors`` raised by them become OSError."""
    return io.BufferedReader(_ChunkStream(chunks, errors, what), buffer_size=1 << 16)


class _ChunkStream(io.RawIOBase):
    def __init__(self, chunks: Iterable[bytes], errors: tuple[type[BaseException], ...], what: str):
        self._chunks, self._pending = iter(chunks), memoryview(b"")
        self._errors, self._what = errors, what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            try:
                self._pending = memoryview(next(self._chunks))
            except StopIteration:
                return 0
            except self._errors as exc:
                raise OSError(f"{self._what} failed: {exc}") from exc
        n = min(len(buffer), len(self._pending))
        buffer[:n], self._pending = self._pending[:n], self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        super().close()
