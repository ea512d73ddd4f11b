"""What `seqmodels corpus` reports, as a dict and as a text table."""

from __future__ import annotations

from seqmodels.data.prepare import PreparedCorpus
from seqmodels.data.streaming import BLOCK_TOKENS
from seqmodels.data.windows import num_windows

MANY_CHARACTERS = 200  # a char vocabulary above this many ids gets its rarest listed
RAREST_SHOWN = 10


def corpus_report(prepared: PreparedCorpus, seq_len: int = 100, stride: int | None = None) -> dict:
    """Sizes, vocabulary, coverage, splits and window counts of a prepared corpus."""
    stats, config = prepared.stats, prepared.config
    stride = stride or seq_len
    sizes = prepared.splits.sizes()
    return {
        "files": stats["files"],
        "characters": stats["characters"],
        "level": config.level,
        "tokenizer": prepared.tokenizer().name,
        "tokens": stats["tokens"],
        "characters_per_token": stats["characters"] / max(stats["tokens"], 1),
        "tokenizer_bytes": stats.get("tokenizer_bytes"),
        "vocab_size": stats["vocab_size"],
        "distinct_train_tokens": stats["distinct_train_tokens"],
        "min_freq": config.min_freq,
        "max_vocab": config.max_vocab,
        "train_coverage": stats["train_coverage"],
        "held_out_tokens": stats["held_out_tokens"],
        "held_out_oov": stats["held_out_oov"],
        "held_out_oov_rate": stats["held_out_oov_rate"],
        "splits": sizes,
        "seq_len": seq_len,
        "stride": stride,
        "windows": {k: num_windows(n, seq_len, stride) for k, n in sizes.items()},
        "rarest": _rarest(prepared) if (config.level == "char"
                                        and stats["vocab_size"] > MANY_CHARACTERS) else None,
        "cache": {
            "path": str(prepared.cache_path) if prepared.cache_path else None,
            "hit": prepared.cache_hit,
            "error": stats.get("cache_error"),
        },
    }


def _rarest(prepared: PreparedCorpus) -> list[list]:
    """The RAREST_SHOWN rarest ids of the vocabulary as [token, times in the training split]."""
    import numpy as np

    tokens, train = prepared.vocab.tokens, prepared.splits.train
    counts = np.zeros(len(tokens), dtype=np.int64)
    for start in range(0, len(train), BLOCK_TOKENS):  # a memory map: a block at a time
        counts += np.bincount(np.asarray(train[start:start + BLOCK_TOKENS]), minlength=len(tokens))
    order = sorted(range(2, len(tokens)), key=lambda i: (counts[i], i))[:RAREST_SHOWN]
    return [[tokens[i], int(counts[i])] for i in order]


def _rare_hint(r: dict) -> str:
    """What the rarest characters are and how to leave them out of the vocabulary."""
    shown = ", ".join(f"{token!r} x{count:,}" for token, count in r["rarest"])
    keep = max(MANY_CHARACTERS, r["vocab_size"] // 4)
    return (f"{shown}; --min-freq 5 or --max-vocab {keep} would read the rare ones as <unk> "
            f"(a smaller output layer, fewer ids the model sees too seldom to learn)")


def format_corpus_report(r: dict) -> str:
    """A aligned two-column text table of corpus_report()'s dict."""
    files = r["files"]
    shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    cap = f", max-vocab {r['max_vocab']}" if r["max_vocab"] else ""
    tokenizer = "" if r["tokenizer"] == r["level"] else f", tokenizer {r['tokenizer']}"
    how = (f"merges learnt on the training split's {r['tokenizer_bytes']:,} bytes"
           if r.get("tokenizer_bytes") is not None else f"min-freq {r['min_freq']}{cap}")
    sp, w = r["splits"], r["windows"]
    cache = r["cache"]
    rows = [
        ("files", f"{len(files)} ({shown})"),
        ("characters", f"{r['characters']:,}"),
        ("tokens", f"{r['tokens']:,} ({r['level']} level{tokenizer}, "
                   f"{r['characters_per_token']:.2f} characters per token)"),
        ("vocabulary", f"{r['vocab_size']:,} ids incl. <pad>, <unk> "
                       f"({r['distinct_train_tokens']:,} distinct training tokens, {how})"),
        *([("rarest", _rare_hint(r))] if r.get("rarest") else []),
        ("coverage", f"{100 * r['train_coverage']:.2f}% of training tokens"),
        ("held-out OOV", f"{100 * r['held_out_oov_rate']:.2f}% "
                         f"({r['held_out_oov']:,} of {r['held_out_tokens']:,} val+test tokens)"),
        ("splits", f"train {sp['train']:,} / val {sp['val']:,} / test {sp['test']:,} tokens"),
        (f"windows T={r['seq_len']}", f"train {w['train']:,} / val {w['val']:,} / "
                                     f"test {w['test']:,} (stride {r['stride']})"),
        ("cache", cache["error"] or (f"{'hit' if cache['hit'] else 'written'}: {cache['path']}"
                                     if cache["path"] else "off")),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
