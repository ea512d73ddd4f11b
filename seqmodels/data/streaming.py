"""Streaming preparation: chunks tokenized in worker processes, ids written to a .npy on disk.

Pass 1 reads the corpus a chunk at a time; workers normalise and tokenize each chunk and hand
back the tokens as provisional ids (code points at char level, first-seen numbers at word
level), which are appended to a temporary file. Once the token count is known, the training
split is its first fraction: its provisional ids are counted with NumPy, the vocabulary built
from those counts, and pass 2 maps provisional ids to vocabulary ids block by block into the
.npy (the smallest unsigned type that fits). Text is tokenized once; memory holds a few chunks,
the distinct tokens and one block of ids, never the corpus.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqmodels.data.chunks import CHUNK_BYTES, ChunkReader, Piece
from seqmodels.data.corpus import Source
from seqmodels.data.tokenizers import Tokenizer, tokenizer_from_config
from seqmodels.data.vocab import UNK_ID, Vocabulary
from seqmodels.errors import SeqmodelsError
from seqmodels.interrupts import check_ctrl_c
from seqmodels.progress import progress_bar

BLOCK_TOKENS = 1 << 18  # ids counted or remapped at a time (1 MB of provisional ids)
PROVISIONAL = np.dtype("<u4")


@dataclass
class ChunkResult:
    """One chunk's tokens: local ids into `tokens`, or code points where tokens is None."""

    ids: np.ndarray  # uint32, one per token
    tokens: list[str] | None  # the distinct tokens, in first-seen order (None: code points)
    file_chars: list[tuple[int, int]]  # (source index, normalised characters) per piece
    blank: bool  # the chunk's normalised text is whitespace only
    nbytes: int


_WORKER: Tokenizer | None = None


def _init_worker(tokenizer: Tokenizer) -> None:
    """The tokenizer of this process's chunks."""
    global _WORKER
    _WORKER = tokenizer


def _init_pool_worker(config: dict, vocabulary: dict | None) -> None:
    """A worker process: it rebuilds the tokenizer from its settings (and the vocabulary a
    trained kind learnt before encoding) once. Ctrl-C is the
    command's to handle (it ends the workers), so a worker ignores it rather than print a
    traceback of its own."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    vocab = None if vocabulary is None else Vocabulary.from_json(vocabulary)
    _init_worker(tokenizer_from_config(config, vocab))


def _normalised(piece: Piece, tokenizer: Tokenizer) -> str:
    """A piece's text as the whole-text path reads it."""
    part = tokenizer.normalise(piece.text)
    if piece.final and part and not part.endswith("\n"):
        part += "\n"  # read_corpus ends every non-empty file with a line break
    return part


def tokenize_chunk(pieces: list[Piece]) -> ChunkResult:
    """Normalise and tokenize pieces exactly as the whole-text path would."""
    tokenizer = _WORKER
    parts, file_chars = [], []
    for piece in pieces:
        part = _normalised(piece, tokenizer)
        parts.append(part)
        file_chars.append((piece.source, len(part)))
    text = "".join(parts)
    nbytes = sum(p.nbytes for p in pieces)
    ids, tokens = tokenizer.chunk_ids(text)
    return ChunkResult(ids, tokens, file_chars, not text.strip(), nbytes)


def _jobs(pieces: Iterable[Piece], chunk_bytes: int) -> Iterator[list[Piece]]:
    """Group pieces (small files) into jobs of about chunk_bytes characters."""
    job, size = [], 0
    for piece in pieces:
        job.append(piece)
        size += len(piece.text)
        if size >= chunk_bytes:
            yield job
            job, size = [], 0
    if job:
        yield job


def _results(jobs: Iterator[list[Piece]], tokenizer: Tokenizer, workers: int
             ) -> Iterator[ChunkResult]:
    """Tokenized jobs in order: in this process, or in worker processes, one job in flight each
    while this process reads the next."""
    if workers <= 1:
        _init_worker(tokenizer)
        for job in jobs:
            check_ctrl_c()
            yield tokenize_chunk(job)
        return
    learnt = tokenizer.vocabulary.to_json() if tokenizer.trained else None
    pool = _Workers(workers, tokenizer.to_config(), learnt)
    try:
        busy: deque[int] = deque()  # workers in the order their jobs were given
        for w in range(workers):
            job = next(jobs, None)
            if job is None:
                break
            pool.give(w, job)
            busy.append(w)
        while busy:
            w = busy.popleft()
            result = pool.take(w)
            check_ctrl_c()
            job = next(jobs, None)  # read on while the workers tokenize
            if job is not None:
                pool.give(w, job)
                busy.append(w)
            yield result
    finally:  # an error, Ctrl-C, or the caller stopped early: no chunk is wanted any more
        pool.stop()


class _Workers:
    """Tokenizer processes, each with a pipe of its own: a job is sent only to a worker that
    waits for one, and stopping terminates the processes and closes the pipes. No thread of
    ours writes to a pipe, so nothing can block on the pipe of a process that has died (which
    hung ProcessPoolExecutor's shutdown for good after any error while it was busy)."""

    def __init__(self, count: int, config: dict, vocabulary: dict | None = None) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # not fork: TensorFlow's threads may run
        self.conns, self.processes = [], []
        try:
            for _ in range(count):
                mine, theirs = ctx.Pipe()
                process = ctx.Process(target=_serve, args=(theirs, config, vocabulary), daemon=True,
                                      name="seqmodels-tokenizer")
                process.start()
                theirs.close()  # so a worker's death reaches its pipe as the end of file
                self.conns.append(mine)
                self.processes.append(process)
        except BaseException:
            self.stop()
            raise

    def give(self, w: int, job: list[Piece]) -> None:
        """Send worker w a job (it waits for one, so this returns once the job is read)."""
        try:
            self.conns[w].send(job)
        except (BrokenPipeError, ConnectionResetError, EOFError):
            raise self._died() from None

    def take(self, w: int) -> ChunkResult:
        """Worker w's result; a failure inside it is raised here."""
        try:
            kind, value = self.conns[w].recv()
        except (EOFError, ConnectionResetError, BrokenPipeError):
            raise self._died() from None
        if kind == "error":
            raise value
        return value

    def stop(self) -> None:
        """End the workers now, whatever they were doing."""
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        for process in self.processes:
            process.join(5)
            if process.is_alive():  # stopped or stuck: SIGKILL cannot be ignored
                process.kill()
                process.join(5)
        for conn in self.conns:
            conn.close()
        self.conns, self.processes = [], []

    @staticmethod
    def _died() -> SeqmodelsError:
        return SeqmodelsError(
            "a tokenizer worker process died (out of memory, or a script that prepares a "
            "corpus without `if __name__ == \"__main__\":`); set `workers` to 1")


def _serve(conn, config: dict, vocabulary: dict | None) -> None:
    """A worker process: tokenize each job received until the pipe closes or a None comes."""
    _init_pool_worker(config, vocabulary)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            reply = ("ok", tokenize_chunk(job))
        except Exception as exc:  # the command raises it, with the worker's message
            reply = ("error", exc)
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


def default_workers() -> int:
    """The number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def train_tokenizer(sources: list[Source], tokenizer: Tokenizer, encoding: str, errors: str,
                    fraction: float, vocab_size: int | None, limit: int | None = None,
                    chunk_bytes: int = CHUNK_BYTES) -> int:
    """Train a tokenizer that learns from text (its `trained` set) on the lines of the first
    `fraction` of the corpus' normalised UTF-8 bytes (at most limit bytes); returns the bytes
    it learnt from. The corpus is read twice (its size, then its lines), never held whole."""
    def texts() -> Iterator[str]:
        for piece in ChunkReader(sources, encoding, errors, chunk_bytes):
            check_ctrl_c()
            yield _normalised(piece, tokenizer)

    total = sum(len(text.encode("utf-8", "surrogatepass")) for text in texts())
    budget = int(total * fraction) if limit is None else min(limit, int(total * fraction))
    used = 0

    def lines() -> Iterator[str]:
        nonlocal used
        for text in texts():
            for line in text.splitlines(keepends=True):
                size = len(line.encode("utf-8", "surrogatepass"))
                if used + size > budget:
                    return
                used += size
                yield line[:-1] if line.endswith("\n") else line

    tokenizer.train(lines(), vocab_size)
    return used


def write_ids(
    sources: list[Source],
    tokenizer: Tokenizer,
    encoding: str,
    errors: str,
    split_at: Callable[[int], int],
    vocab_from_counts: Callable[[dict[str, int]], Vocabulary],
    out: Path,
    workers: int | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    progress: bool = False,
) -> tuple[Vocabulary, dict, str]:
    """Tokenize sources into out/ids.npy; returns the vocabulary, statistics and digest.

    split_at(n) gives the end of the training split of n tokens; vocab_from_counts(counts)
    builds the vocabulary from the training split's token counts (the tokenizer's fit).
    """
    total = sum(s.path.stat().st_size for s in sources if not s.builtin)
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise SeqmodelsError("`workers` must be at least 1")
    workers = min(workers, -(-total // chunk_bytes))  # no more processes than chunks
    reader = ChunkReader(sources, encoding, errors, chunk_bytes)
    file_chars = [0] * len(sources)
    words: dict[str, int] = {}  # token -> provisional id (when ids are not code points)
    n, blank, top = 0, True, 0
    prov_path = out / "provisional.u32"
    bar = progress_bar(total=total or None, desc="preparing", unit="B", unit_scale=True,
                       unit_divisor=1024, show=progress, leave=False)
    results = _results(iter(_jobs(reader, chunk_bytes)), tokenizer, workers)
    with bar, open(prov_path, "wb") as prov, closing(results):  # a failure here ends the
        for result in results:  # workers at once, not when the generator is collected
            ids = result.ids
            if result.tokens is not None:
                to_global = np.fromiter((words.setdefault(t, len(words)) for t in result.tokens),
                                        dtype=PROVISIONAL, count=len(result.tokens))
                ids = to_global[ids]
            if len(ids):
                top = max(top, int(ids.max()) + 1)
            _write(prov, ids, prov_path)
            n += len(ids)
            blank = blank and result.blank
            for i, c in result.file_chars:
                file_chars[i] += c
            bar.update(result.nbytes)
    if blank:
        names = ", ".join(s.name for s in sources[:3]) + (" ..." if len(sources) > 3 else "")
        raise SeqmodelsError(f"the corpus is empty ({names})")
    if n == 0:
        raise SeqmodelsError("the corpus has no tokens left after tokenization")
    code_points = not words  # every chunk gave code points (or no token at all)
    token = chr if code_points else list(words).__getitem__
    a = split_at(n)
    if a == 0:  # a vocabulary comes from the training split alone
        raise SeqmodelsError(f"the training split holds none of the corpus' {n:,} tokens; give "
                             f"it a larger part with `splits`")
    counts = _count(prov_path, a, top)
    train_counts = {token(int(p)): int(counts[p]) for p in np.flatnonzero(counts)}
    vocab = vocab_from_counts(train_counts)
    remap = np.full(top, UNK_ID, dtype=vocab.id_dtype())
    for t, i in vocab.index.items():
        p = (ord(t) if len(t) == 1 else None) if code_points else words.get(t)
        if p is not None and p < top:
            remap[p] = i
    oov = _remap(prov_path, out / "ids.npy", remap, n, a)
    prov_path.unlink()
    held_out = n - a
    stats = {
        "files": [s.name for s in sources],
        "file_chars": file_chars,
        "characters": sum(file_chars),
        "tokens": n,
        "distinct_train_tokens": len(train_counts),
        "vocab_size": len(vocab),
        "train_coverage": vocab.coverage(train_counts),
        "held_out_tokens": held_out,
        "held_out_oov": oov,
        "held_out_oov_rate": oov / held_out if held_out else 0.0,
        "content_digest": reader.digest,
    }
    return vocab, stats, reader.digest


def _write(f, ids: np.ndarray, path: Path) -> None:
    """Append ids to an open file; a full disk or a file-size limit is an OSError naming the
    file and why (numpy's tofile says only how many bytes it wrote)."""
    try:
        f.write(ids.tobytes())
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None


def _blocks(path: Path, stop: int) -> Iterator[tuple[int, np.ndarray]]:
    """(start, ids) blocks of the first stop provisional ids, read (not mapped) from path."""
    with open(path, "rb") as f:
        start = 0
        while start < stop:
            block = np.fromfile(f, dtype=PROVISIONAL, count=min(BLOCK_TOKENS, stop - start))
            yield start, block
            start += len(block)


def _count(path: Path, stop: int, top: int) -> np.ndarray:
    """How often each provisional id occurs among the first stop ids."""
    counts = np.zeros(top, dtype=np.int64)
    for _, block in _blocks(path, stop):
        counts += np.bincount(block, minlength=top)
    return counts


def _remap(prov: Path, npy: Path, remap: np.ndarray, n: int, held_out_from: int) -> int:
    """Write remap[provisional ids] into a new .npy at npy; returns <unk>s from held_out_from."""
    header = np.lib.format.open_memmap(npy, mode="w+", dtype=remap.dtype, shape=(n,))
    offset = header.offset
    del header  # written through a file, so no page of the output stays mapped in this process
    oov = 0
    with open(npy, "r+b") as f:
        f.seek(offset)
        for start, block in _blocks(prov, n):
            ids = remap[block]
            _write(f, ids, npy)
            tail = ids[max(0, held_out_from - start):]
            oov += int(np.count_nonzero(tail == UNK_ID))
    return oov
