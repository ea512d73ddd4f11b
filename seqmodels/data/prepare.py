"""Corpus to token ids and vocabulary, cached on disk by content and settings."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqmodels.data.chunks import CHUNK_BYTES, stream_digest
from seqmodels.data.config import DataConfig
from seqmodels.data.corpus import normalise, read_corpus, resolve_sources
from seqmodels.data.streaming import Settings, write_ids
from seqmodels.data.tokenizers import Tokenizer, read_stopwords
from seqmodels.data.vocab import Vocabulary
from seqmodels.data.windows import Splits, check_fractions, split_bounds, split_ids
from seqmodels.errors import SeqmodelsError
from seqmodels.files import read_json, write_json_atomic

CACHE_VERSION = 1


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
        """The tokenizer these ids were made with (for encoding prompts and decoding output)."""
        return make_tokenizer(self.config)


def encode_corpus(config: DataConfig, vocab: Vocabulary, specs: list[str]) -> np.ndarray:
    """Ids of other text, read and tokenized with a run's settings and vocabulary."""
    return vocab.encode(make_tokenizer(config).tokenize(corpus_text(config, specs)))


def corpus_text(config: DataConfig, specs: list[str]) -> str:
    """The decoded, normalised text of corpus arguments, read with a config's settings."""
    return read_corpus(resolve_sources(specs), config.encoding, config.errors,
                       config.normalize, config.lowercase).text


def run_test_ids(run_config: dict, vocab: Vocabulary, cache_dir: str | Path | None = None,
                 progress: bool = False) -> np.ndarray:
    """The test split of the corpus a run was trained on, checked against the run."""
    config = DataConfig.from_json(run_config["data"])
    try:
        prepared = prepare_corpus(config, cache_dir=cache_dir, progress=progress)
    except SeqmodelsError as exc:
        raise SeqmodelsError(f"cannot read the corpus the run was trained on ({exc}); evaluate "
                             f"other text with --corpus PATH") from None
    digest = run_config.get("corpus_digest")
    if (digest and prepared.stats["content_digest"] != digest) or prepared.vocab != vocab:
        raise SeqmodelsError("the run's corpus has changed since training; evaluate on "
                             "explicit text with --corpus PATH")
    if len(prepared.splits.test) < 2:
        raise SeqmodelsError("this run's corpus has no test split; pass --corpus PATH")
    return prepared.splits.test


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/seqmodels, or ~/.cache/seqmodels."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "seqmodels"


def make_tokenizer(config: DataConfig) -> Tokenizer:
    """The tokenizer a data config describes, stopword file read."""
    stop = read_stopwords(config.stopwords) if config.stopwords else ()
    return Tokenizer(config.level, config.tokenizer, stop)


def cache_key(config: DataConfig, content_digest: str, stopword_bytes: bytes) -> str:
    """Hash of the corpus bytes and every setting that changes the ids."""
    import nltk

    settings = config.to_json()
    settings.pop("corpus")
    settings["stopwords"] = hashlib.sha256(stopword_bytes).hexdigest() if config.stopwords else None
    settings["cache_version"] = CACHE_VERSION
    settings["nltk"] = nltk.__version__ if config.level == "word" else None
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

    The corpus is streamed a chunk at a time through `workers` processes (default:
    config.workers, else all cores) into a memory-mapped ids.npy; memory stays bounded by
    the chunk size and the number of distinct tokens, not the corpus size.
    """
    check_fractions(config.splits)
    tokenizer = make_tokenizer(config)  # validates level/tokenizer/stopwords early
    sources = resolve_sources(config.corpus)
    digest = stream_digest(sources)
    stop_bytes = Path(config.stopwords).read_bytes() if config.stopwords else b""
    key = cache_key(config, digest, stop_bytes)
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    entry = root / key
    if use_cache and (entry / "meta.json").is_file():
        try:
            return _load_entry(config, entry)
        except SeqmodelsError:
            pass  # a damaged cache entry is rebuilt below
    normalise("", config.normalize)  # an unknown normal form fails before any work
    workers = workers if workers is not None else config.workers

    def build(folder: Path) -> tuple[Vocabulary, dict]:
        settings = Settings(config.level, tokenizer.name if config.level == "word" else None,
                            tuple(sorted(tokenizer.stopwords)), config.normalize,
                            config.lowercase)
        vocab, stats, read_digest = write_ids(
            sources, settings, tokenizer, config.encoding, config.errors,
            lambda n: split_bounds(n, config.splits)[0],
            lambda counts: Vocabulary.from_counts(counts, config.min_freq, config.max_vocab),
            folder, workers, chunk_bytes, progress)
        if read_digest != digest:
            raise SeqmodelsError("the corpus changed while it was being read; try again")
        return vocab, stats

    cache_error = None
    if use_cache:
        try:
            return _build_entry(config, entry, build)
        except OSError as exc:
            cache_error = f"could not write cache {entry}: {exc.strerror or exc}"
    with tempfile.TemporaryDirectory(prefix="seqmodels-") as scratch:
        vocab, stats = build(Path(scratch))
        # the mapping outlives the file, which goes with the folder: nothing is left on disk
        ids = np.load(Path(scratch) / "ids.npy", mmap_mode="r", allow_pickle=False)
    if cache_error:
        stats["cache_error"] = cache_error
    return PreparedCorpus(config, ids, vocab, stats)


def _build_entry(config: DataConfig, entry: Path, build) -> PreparedCorpus:
    """Build ids.npy, vocab.json and meta.json in a temporary folder, then rename it."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        vocab, stats = build(tmp)
        vocab.save(tmp / "vocab.json")
        write_json_atomic(tmp / "meta.json", {"cache_version": CACHE_VERSION, "stats": stats})
        if entry.exists():
            try:  # another process (say, a second worker) finished the same entry first
                return _load_entry(config, entry, hit=False)
            except SeqmodelsError:
                shutil.rmtree(entry)  # a damaged entry; a complete one is never rewritten
        os.replace(tmp, entry)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return _load_entry(config, entry, hit=False)


def _load_entry(config: DataConfig, entry: Path, hit: bool = True) -> PreparedCorpus:
    """Open a cache entry, ids memory-mapped."""
    meta = read_json(entry / "meta.json")
    if not isinstance(meta, dict) or meta.get("cache_version") != CACHE_VERSION:
        raise SeqmodelsError(f"{entry}: stale cache entry")
    vocab = Vocabulary.load(entry / "vocab.json")
    try:
        ids = np.load(entry / "ids.npy", mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SeqmodelsError(f"{entry / 'ids.npy'}: damaged ({exc})") from None
    if len(ids) != meta["stats"]["tokens"]:
        raise SeqmodelsError(f"{entry / 'ids.npy'}: truncated")
    return PreparedCorpus(config, ids, vocab, meta["stats"], entry, hit)
