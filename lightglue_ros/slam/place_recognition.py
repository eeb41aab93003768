"""Place recognition: one global descriptor per image from its local descriptors (VLAD).

Each local descriptor is assigned to its nearest visual word of a small k-means vocabulary, and
the residuals to the word are summed per word (VLAD). Intra-normalisation per word, signed square
root and L2 normalisation make a single burst of similar descriptors (a repeated texture) count
little, so two images are compared by the dot product of their vectors. The vocabulary is trained
offline on images that may be shipped (``tools/train_vocabulary.py``) and ships with the package
as a small .npz per descriptor size, pinned by its sha256; nothing is downloaded.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VOCABULARY_DIR = Path(__file__).resolve().parent / "vocabulary"
# The shipped vocabularies by descriptor size (XFeat 64, ALIKED 128), with their sha256.
VOCABULARIES: dict[int, tuple[str, str]] = {
    64: ("xfeat_64d_32w.npz", "2384ee7b029a7eaa05e7aba79dd60abd39de11322f098a7ab2dd6b5f3370b0ba"),
    128: ("aliked_128d_32w.npz",
          "e5e7e808c8cf3cf06f755881941949733b117f1dabfad344cd4ce156debf9906"),
}


class VocabularyError(RuntimeError):
    """A vocabulary file is missing, modified or of the wrong descriptor size."""


@dataclass(frozen=True)
class Vocabulary:
    """k visual words (k, D), unit length like the descriptors they quantise."""

    words: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.words.shape[1])

    @property
    def size(self) -> int:
        return int(self.words.shape[0])

    def save(self, path: Path) -> Path:
        np.savez_compressed(path, words=self.words.astype(np.float32), version=np.int64(1))
        return path

    @classmethod
    def load(cls, path: Path) -> "Vocabulary":
        with np.load(path) as data:
            return cls(np.asarray(data["words"], np.float32))

    @classmethod
    def shipped(cls, dim: int) -> "Vocabulary":
        """The package's vocabulary for ``dim``-dimensional descriptors, checked against its
        pinned sha256."""
        if dim not in VOCABULARIES:
            raise VocabularyError(f"no vocabulary ships for {dim}-d descriptors (there are: "
                                  f"{sorted(VOCABULARIES)}); train one with "
                                  "tools/train_vocabulary.py")
        name, sha = VOCABULARIES[dim]
        path = VOCABULARY_DIR / name
        if not path.is_file():
            raise VocabularyError(f"vocabulary {path} is missing; reinstall the package")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != sha:
            raise VocabularyError(f"vocabulary {path} has sha256 {digest}, expected {sha}")
        return cls.load(path)


def train_vocabulary(descriptors: np.ndarray, size: int, seed: int = 0,
                     iterations: int = 25) -> Vocabulary:
    """Spherical k-means (cosine) over descriptors (M, D): ``size`` unit-length words."""
    X = _unit(np.asarray(descriptors, np.float32))
    if len(X) < size:
        raise ValueError(f"need at least {size} descriptors to train {size} words, got {len(X)}")
    rng = np.random.default_rng(seed)
    words = X[rng.choice(len(X), size, replace=False)].copy()
    for _ in range(iterations):
        assign = np.argmax(X @ words.T, axis=1)
        for k in range(size):
            members = X[assign == k]
            # An empty word restarts on a random descriptor rather than dying.
            words[k] = members.sum(0) if len(members) else X[rng.integers(len(X))]
        words = _unit(words)
    return Vocabulary(words)


def vlad(descriptors: np.ndarray, vocabulary: Vocabulary) -> np.ndarray:
    """The global descriptor (k * D,) of one image's local descriptors (N, D), unit length
    (zeros for an image without descriptors)."""
    X = _unit(np.asarray(descriptors, np.float32))
    if X.shape[1:] != (vocabulary.dim,):
        raise VocabularyError(f"descriptors are {X.shape[1:]}-d, the vocabulary "
                              f"{vocabulary.dim}-d")
    out = np.zeros((vocabulary.size, vocabulary.dim), np.float32)
    if len(X):
        assign = np.argmax(X @ vocabulary.words.T, axis=1)
        np.add.at(out, assign, X - vocabulary.words[assign])
    out = _unit(out)  # intra-normalisation: one word's burst counts once
    out = np.sign(out) * np.sqrt(np.abs(out))
    norm = np.linalg.norm(out)
    return (out / norm).ravel() if norm > 0 else out.ravel()


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.where(norm > 0, x / np.maximum(norm, 1e-12), 0.0).astype(np.float32)
