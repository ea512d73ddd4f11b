"""Read corpus sources in chunks cut at line breaks, decoded and checked like whole files."""

from __future__ import annotations

import codecs
import hashlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from seqmodels.data.config import BLOCKWISE_UNDECODABLE
from seqmodels.data.corpus import Source
from seqmodels.errors import SeqmodelsError

CHUNK_BYTES = 1 << 20  # bytes read at a time; a chunk is this plus the rest of its last line
HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class Piece:
    """Decoded text of one source that ends at a line break (or the source's end)."""

    source: int  # index of the source in the list read
    text: str  # decoded, line breaks made "\n"; not normalised yet
    final: bool  # the last piece of its source (gets the closing line break added)
    nbytes: int  # bytes of the source read for this piece (for progress)


def _open(source: Source):
    """Open a file source for binary reading, with the corpus's one-line error."""
    try:
        return open(source.path, "rb")  # noqa: SIM115 (closed by the caller's with)
    except OSError as exc:
        raise SeqmodelsError(f"cannot read {source.path}: {exc.strerror or exc}") from None


def _read(source: Source, f, size: int) -> bytes:
    try:
        return f.read(size)
    except OSError as exc:
        raise SeqmodelsError(f"cannot read {source.path}: {exc.strerror or exc}") from None


def _size(f) -> int:
    import os

    return os.fstat(f.fileno()).st_size


def stream_digest(sources: list[Source]) -> str:
    """corpus.content_digest() of the sources' bytes, read a block at a time."""
    h = hashlib.sha256()
    for source in sources:
        if source.builtin:
            data = source.read_bytes()
            h.update(len(data).to_bytes(8, "little"))
            h.update(data)
            continue
        with _open(source) as f:
            size, seen = _size(f), 0
            h.update(size.to_bytes(8, "little"))
            while block := _read(source, f, HASH_BLOCK):
                h.update(block)
                seen += len(block)
        if seen != size:
            raise _changed(source)
    return h.hexdigest()


def _changed(source: Source) -> SeqmodelsError:
    return SeqmodelsError(f"{source.name} changed while it was being read; try again")


class ChunkReader:
    """Iterates Pieces of all sources in order; afterwards .digest is their content digest."""

    def __init__(self, sources: list[Source], encoding: str = "utf-8", errors: str = "strict",
                 chunk_bytes: int = CHUNK_BYTES) -> None:
        if chunk_bytes < 1:
            raise SeqmodelsError("the chunk size must be at least 1 byte")
        self.sources, self.encoding, self.errors = sources, encoding, errors
        self.chunk_bytes = chunk_bytes
        self._hash = hashlib.sha256()

    @property
    def digest(self) -> str:
        """SHA-256 of what was read so far (the content digest once iteration has finished)."""
        return self._hash.hexdigest()

    def __iter__(self) -> Iterator[Piece]:
        for i, source in enumerate(self.sources):
            if source.builtin:
                yield from self._builtin(i, source)
            else:
                yield from self._file(i, source)

    def _builtin(self, i: int, source: Source) -> Iterator[Piece]:
        data = source.read_bytes()
        self._hash.update(len(data).to_bytes(8, "little"))
        self._hash.update(data)
        text, start = source.text(data), 0
        while start < len(text):
            cut = text.find("\n", start + self.chunk_bytes) + 1 or len(text)
            yield Piece(i, text[start:cut], cut == len(text), 0)
            start = cut
        if not text:
            yield Piece(i, "", True, 0)

    def _file(self, i: int, source: Source) -> Iterator[Piece]:
        with _open(source) as f:
            size = _size(f)
            self._hash.update(size.to_bytes(8, "little"))
            offset = chars = unreported = 0  # bytes fed, characters decoded, bytes not yielded
            first_nul = None  # where the file's first NUL character is
            carry = ""
            block = _read(source, f, max(self.chunk_bytes, 4))  # room for a byte order mark
            decoder = _decoder(self.encoding, block, self.errors)
            while True:
                if offset:
                    block = _read(source, f, self.chunk_bytes)
                self._hash.update(block)
                final = not block
                pending = len(decoder.getstate()[0])  # bytes held back from the last block
                try:
                    text = decoder.decode(block, final)
                except LookupError:
                    raise SeqmodelsError(f"unknown encoding {self.encoding!r}") from None
                except UnicodeDecodeError as exc:
                    where = offset - pending + exc.start
                    raise source.decode_error(exc, where, self.encoding) from None
                except UnicodeError as exc:  # codecs such as punycode raise the base class
                    raise source.codec_error(exc, self.encoding) from None
                offset += len(block)
                unreported += len(block)
                nul = text.find("\x00")
                if nul >= 0 and first_nul is None:  # counted before line breaks are changed
                    first_nul = chars + nul  # refused at the file's end: a byte that does not
                    # decode, anywhere in the file, is named first (as decoding it whole does)
                chars += len(text)
                if final:
                    break
                cut = text.rfind("\n") + 1
                if cut:  # a "\r\n" is never cut: the "\r" stays before the "\n" it precedes
                    yield Piece(i, _newlines(carry + text[:cut]), False, unreported)
                    carry, unreported = text[cut:], 0
                else:
                    carry += text
        if offset != size:
            raise _changed(source)
        if first_nul is not None:
            raise source.nul_error(first_nul, self.encoding)
        yield Piece(i, _newlines(carry + text), True, unreported)


_BOMS = {"utf-16": (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE),
         "utf-32": (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)}


class _Empty(codecs.IncrementalDecoder):
    def decode(self, input: bytes, final: bool = False) -> str:
        return ""


def _decoder(encoding: str, head: bytes, errors: str) -> codecs.IncrementalDecoder:
    """An incremental decoder that decodes like bytes.decode(): UTF-16/32 without a byte
    order mark are read in the machine's byte order (the incremental ones would refuse)."""
    if not head:
        return _Empty()  # b"".decode(anything) is ""
    try:
        info = codecs.lookup(encoding)
        if not getattr(info, "_is_text_encoding", True):  # base64, rot13: bytes.decode refuses
            raise LookupError(encoding)
    except LookupError:
        raise SeqmodelsError(f"unknown encoding {encoding!r}") from None
    if info.name in BLOCKWISE_UNDECODABLE:
        raise SeqmodelsError(BLOCKWISE_UNDECODABLE[info.name])
    codec = info.name
    if codec in _BOMS and not head.startswith(_BOMS[codec]):
        codec += "-le" if sys.byteorder == "little" else "-be"
    return codecs.getincrementaldecoder(codec)(errors)


def _newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")
