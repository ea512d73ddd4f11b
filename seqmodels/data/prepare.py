"""Corpus to token ids and vocabulary, cached on disk by content and settings."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqmodels.data.chunks import CHUNK_BYTES, stream_digest
from seqmodels.data.config import DataConfig
from seqmodels.data.corpus import read_corpus, resolve_sources
from seqmodels.data.streaming import train_tokenizer, write_ids
from seqmodels.data.tokenizers import Tokenizer, make_tokenizer
from seqmodels.data.vocab import Vocabulary
from seqmodels.data.windows import Splits, check_fractions, split_bounds, split_ids
from seqmodels.errors import SeqmodelsError
from seqmodels.files import (
    MAX_JSON_BYTES,
    read_json,
    read_regular,
    remove_abandoned_folders,
    temporary_folder,
    write_json_atomic,
)

# a tokenizer that learns from text learns from the training split's share of the bytes; where
# the training split in tokens ends before that, it learns again from what that split holds
TRAINING_TRIES = 4
TRAINING_MARGIN = 0.98  # each try after the first learns on this share of what the split held
CACHE_VERSION = 3  # 2: meta.json holds digests of the vocabulary and the ids; 3: new key
VOCABULARY, IDS, META = "vocabulary.json", "ids.npy", "meta.json"  # a cache entry's files


@dataclass
class PreparedCorpus:
    """Token ids of the whole corpus (memory-mapped when cached), vocabulary and statistics."""

    config: DataConfig
    ids: np.ndarray
    vocab: Vocabulary
    stats: dict
    cache_path: Path | None = None
    cache_hit: bool = False

    @property
    def splits(self) -> Splits:
        """Contiguous train/val/test views of ids."""
        return split_ids(self.ids, self.config.splits)

    def tokenizer(self) -> Tokenizer:
        """The tokenizer these ids were made with, with their vocabulary."""
        return make_tokenizer(self.config, self.vocab)


def corpus_text(config: DataConfig, specs: list[str]) -> str:
    """The decoded, normalised text of corpus arguments, read with a config's settings."""
    return read_corpus(resolve_sources(specs), config.encoding, config.errors,
                       config.normalize, config.lowercase).text


def corpus_test_ids(config: DataConfig, digest: str | None, vocab: Vocabulary,
                    cache_dir: str | Path | None = None, progress: bool = False,
                    stored_in: tuple[object, object] = ("its settings", "its vocabulary")
                    ) -> np.ndarray:
    """The test split of the corpus a run was trained on (config and digest as the run stored
    them), checked to give the run's vocabulary; stored_in names where the run keeps its
    settings and its vocabulary, for the message when they no longer agree."""
    try:
        prepared = prepare_corpus(config, cache_dir=cache_dir, progress=progress)
    except SeqmodelsError as exc:
        raise SeqmodelsError(f"cannot read the corpus the run was trained on ({exc}); if it "
                             f"has moved, give it again as `corpus` PATH (the same files: "
                             f"their test split is scored), or evaluate other text with "
                             f"`corpus` PATH") from None
    if digest and prepared.stats["content_digest"] != digest:
        raise SeqmodelsError("the run's corpus has changed since training; evaluate on "
                             "explicit text with `corpus` PATH")
    if prepared.vocab != vocab:
        raise SeqmodelsError(f"the run's corpus or the data settings in {stored_in[0]} (level, "
                             f"tokenizer, min_freq, ...) have changed since training: they no "
                             f"longer give {stored_in[1]}; evaluate on explicit text with "
                             f"`corpus` PATH")
    if len(prepared.splits.test) < 2:
        raise SeqmodelsError("this run's corpus has no test split; pass `corpus` PATH")
    return prepared.splits.test


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/seqmodels, or ~/.cache/seqmodels."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "seqmodels"


TEXTS = "texts"  # the cache folder's sub-folder of texts given in memory


def write_texts(config: DataConfig, cache_dir: str | Path | None = None) -> DataConfig:
    """The config with its in-memory `texts` written to files named by their SHA-256 under
    the cache folder's texts/ (once: the same text is the same file) and added to its corpus;
    the config itself when it has none."""
    if not config.texts:
        return config
    import dataclasses

    from seqmodels.files import write_text_atomic

    if config.encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise SeqmodelsError("`texts` are strings, written as UTF-8: leave `encoding` at utf-8")
    folder = (Path(cache_dir) if cache_dir else default_cache_dir()) / TEXTS
    paths = []
    for i, text in enumerate(config.texts):
        if not isinstance(text, str):
            raise SeqmodelsError(f"`texts` holds strings; item {i} is a "
                                 f"{type(text).__name__}")
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates
            raise SeqmodelsError(f"`texts` item {i} cannot be written as UTF-8 ({exc.reason} at "
                                 f"character {exc.start})") from None
        path = folder / f"{hashlib.sha256(data).hexdigest()}.txt"
        if not path.is_file() or path.stat().st_size != len(data):
            folder.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, text)
        paths.append(str(path))
    base = list(config.corpus) if config.corpus else []
    return dataclasses.replace(config, corpus=[*base, *paths], texts=[])


def cache_key(config: DataConfig, tokenizer: Tokenizer, content_digest: str) -> str:
    """Hash of the corpus bytes and every setting that changes the ids: the tokenizer's
    fingerprint (its settings, stopwords, library versions) among them."""
    settings = config.to_json()
    for name in ("corpus", "stopwords", "texts"):  # the files' contents count, not their names
        settings.pop(name)
    settings["tokenizer"] = tokenizer.fingerprint()
    settings["cache_version"] = CACHE_VERSION
    blob = json.dumps([settings, content_digest], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def prepare_corpus(
    config: DataConfig,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: bool = False,
    workers: int | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> PreparedCorpus:
    """Read, tokenize and encode a corpus, or load the result of an identical earlier run.

    The corpus is streamed a chunk at a time through `workers` processes (default: all
    cores) into a memory-mapped array of ids; memory stays bounded by the chunk size and the
    number of distinct tokens, not the corpus size.
    """
    check_fractions(config.splits)
    config = write_texts(config, cache_dir)
    tokenizer = make_tokenizer(config)  # validates level/tokenizer/stopwords early
    sources = resolve_sources(config.corpus)
    digest = stream_digest(sources)
    key = cache_key(config, tokenizer, digest)
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    entry = root / key
    cache_error = None
    if use_cache:
        try:
            present = (entry / META).is_file()
        except PermissionError as exc:  # a shared cache_dir: another user's entry (0700)
            present, use_cache = False, False
            cache_error = (f"could not read cache {entry}: {exc.strerror or exc} (another "
                           f"user's entry?); tokenized without the cache")
    if use_cache and present:
        try:
            prepared = _load_entry(config, entry)
            # keyed by content: the entry may have been built from files of other names
            prepared.stats["files"] = [s.name for s in sources]
            return prepared
        except SeqmodelsError as exc:  # a damaged cache entry is rebuilt below
            warnings.warn(f"rebuilding a damaged cache entry: {exc}", stacklevel=2)

    def build(folder: Path) -> tuple[Vocabulary, dict]:
        limit = None
        for tries in range(TRAINING_TRIES):
            if tokenizer.trained:
                learnt = train_tokenizer(sources, tokenizer, config.encoding, config.errors,
                                         config.splits[0], config.max_vocab, limit, chunk_bytes)
            vocab, stats, read_digest = write_ids(
                sources, tokenizer, config.encoding, config.errors,
                lambda n: split_bounds(n, config.splits)[0],
                lambda counts: tokenizer.fit(counts, config.min_freq, config.max_vocab),
                folder, workers, chunk_bytes, progress)
            if read_digest != digest:
                raise SeqmodelsError("the corpus changed while it was being read; try again")
            if not tokenizer.trained:
                break
            stats["tokenizer_bytes"] = learnt
            held = _training_split_bytes(folder / IDS, vocab, stats["tokens"], config.splits)
            if held >= learnt:  # it learnt from the training split alone
                break
            limit = int(held * TRAINING_MARGIN ** (tries + 1))  # less each time
        else:
            raise SeqmodelsError(f"the subword merges kept reaching past the training split "
                                 f"({TRAINING_TRIES} tries): its text compresses much worse than "
                                 f"the rest; give the training split a larger part with "
                                 f"`splits`, or use `level` byte or char")
        return vocab, stats

    if use_cache:
        try:
            prepared = _build_entry(config, entry, build)
            prepared.stats["files"] = [s.name for s in sources]  # as above: another process
            return prepared  # may have finished the entry first, from files of other names
        except OSError as exc:
            cache_error = f"could not write cache {entry}: {exc.strerror or exc}"
    with tempfile.TemporaryDirectory(prefix="seqmodels-") as scratch:
        try:
            vocab, stats = build(Path(scratch))
        except OSError as exc:  # a full disk, a file-size limit: where, and why
            where = (f"could be written neither in the cache ({cache_error}) nor in a "
                     f"temporary folder" if cache_error else
                     "could not be written in a temporary folder")
            raise SeqmodelsError(f"the corpus' token ids {where} ({exc.strerror or exc}); free "
                                 f"some disk space or raise the file-size limit") from None
        # the mapping outlives the file, which goes with the folder: nothing is left on disk
        ids = np.load(Path(scratch) / IDS, mmap_mode="r", allow_pickle=False)
    if cache_error:
        stats["cache_error"] = cache_error
    return PreparedCorpus(config, ids, vocab, stats)


def _build_entry(config: DataConfig, entry: Path, build) -> PreparedCorpus:
    """Build the ids, vocabulary and meta files in a temporary folder, then rename it."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_folders(entry.parent)  # what killed builds left
    tmp = temporary_folder(entry)
    try:
        vocab, stats = build(tmp)
        vocab.save(tmp / VOCABULARY)
        ids = np.load(tmp / IDS, mmap_mode="r", allow_pickle=False)
        digests = {"vocab_digest": _file_digest(tmp / VOCABULARY),
                   "ids_digest": _scan_ids(tmp / IDS, ids)[1]}
        del ids
        write_json_atomic(tmp / META, {"cache_version": CACHE_VERSION, "stats": stats,
                                              **digests})
        if entry.exists():
            try:  # another process (say, a second worker) finished the same entry first
                return _load_entry(config, entry, hit=False)
            except SeqmodelsError:
                if entry.is_symlink() or not entry.is_dir():
                    raise SeqmodelsError(f"{entry}: not a cache folder of seqmodels; remove "
                                         f"it, or use another `cache_dir`") from None
                shutil.rmtree(entry)  # a damaged entry; a complete one is never rewritten
        os.replace(tmp, entry)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return _load_entry(config, entry, hit=False)


def _load_entry(config: DataConfig, entry: Path, hit: bool = True) -> PreparedCorpus:
    """Open a cache entry, ids memory-mapped."""
    if entry.is_symlink():
        raise SeqmodelsError(f"{entry}: a symbolic link, not a cache entry")
    meta = read_json(entry / META)
    if not isinstance(meta, dict) or meta.get("cache_version") != CACHE_VERSION:
        raise SeqmodelsError(f"{entry}: stale cache entry")
    stats = meta.get("stats")
    if not all(isinstance(meta.get(k), str) for k in ("vocab_digest", "ids_digest")):
        raise SeqmodelsError(f"{entry / META}: no digests of {VOCABULARY} and {IDS}")
    vocab = Vocabulary.load(entry / VOCABULARY)
    if _file_digest(entry / VOCABULARY) != meta["vocab_digest"]:
        raise SeqmodelsError(f"{entry / VOCABULARY}: changed since it was cached")
    _check_stats(stats, len(vocab), entry / META)
    ids_path = entry / IDS
    if ids_path.is_symlink() or not ids_path.is_file():
        raise SeqmodelsError(f"{ids_path}: not a regular file")
    try:
        ids = np.load(ids_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SeqmodelsError(f"{ids_path}: damaged ({exc})") from None
    if ids.ndim != 1 or ids.dtype.kind != "u":
        raise SeqmodelsError(f"{ids_path}: holds {ids.dtype} of shape {ids.shape}, not token ids")
    if len(ids) != stats["tokens"]:
        raise SeqmodelsError(f"{ids_path}: truncated")
    largest, digest = _scan_ids(ids_path, ids)
    if largest >= len(vocab):
        raise SeqmodelsError(f"{ids_path}: holds id {largest}, outside its vocabulary "
                             f"of {len(vocab):,}")
    if digest != meta["ids_digest"]:
        raise SeqmodelsError(f"{ids_path}: changed since it was cached")
    return PreparedCorpus(config, ids, vocab, stats, entry, hit)


_COUNT_STATS = ("characters", "tokens", "distinct_train_tokens", "vocab_size", "held_out_tokens",
                "held_out_oov")


def _check_stats(stats: object, vocab_size: int, where: Path) -> None:
    """A cache entry's stats: the figures `corpus` reports, of the right types and ranges."""
    def count(v: object) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    def fraction(v: object) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1

    if not (isinstance(stats, dict) and all(count(stats.get(k)) for k in _COUNT_STATS)
            and all(fraction(stats.get(k)) for k in ("train_coverage", "held_out_oov_rate"))
            and isinstance(stats.get("files"), list)
            and all(isinstance(f, str) for f in stats["files"])
            and isinstance(stats.get("content_digest"), str)
            and stats["vocab_size"] == vocab_size):
        raise SeqmodelsError(f"{where}: its stats are missing or damaged")


def _scan_ids(path: Path, ids: np.memmap, chunk: int = 4 * 2**20) -> tuple[int, str]:
    """The largest id of a memory-mapped ids file and the SHA-256 of its ids, read a chunk at a
    time with read(), so the check does not map the whole file into the process (its pages
    would count as memory)."""
    largest, done, n, digest = 0, 0, len(ids), hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(ids.offset)
        while done < n:
            data = f.read(min(chunk, n - done) * ids.itemsize)
            part = np.frombuffer(data, ids.dtype)
            if not len(part):
                break
            digest.update(data)
            largest = max(largest, int(part.max()))
            done += len(part)
    return largest, digest.hexdigest()


def _training_split_bytes(path: Path, vocab: Vocabulary, n: int,
                          splits: tuple[float, float, float]) -> int:
    """UTF-8 bytes of the training split of the ids at path (tokens are bytes, as latin-1)."""
    sizes = np.array([len(t) for t in vocab.tokens], dtype=np.int64)
    ids = np.load(path, mmap_mode="r", allow_pickle=False)
    stop, total = split_bounds(n, splits)[0], 0
    for start in range(0, stop, 1 << 20):
        total += int(sizes[ids[start:min(stop, start + (1 << 20))]].sum())
    del ids
    return total


def _file_digest(path: Path) -> str:
    """SHA-256 of a (small) file's bytes."""
    return hashlib.sha256(read_regular(path, MAX_JSON_BYTES)).hexdigest()
