"""MNIST: download the four IDX files from the usual mirrors, verify them, and read them.

torchvision cannot be installed beside the CPU torch the course pins, so the downloader and the
IDX reader are ours. Every file is checked against its MD5 and written atomically (a temporary
file in the same folder, renamed into place once verified), so an interrupted download never
leaves a half-written file under the final name; a corrupted file on disk is fetched again.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import socket
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from dpfl_course._validate import check_finite
from dpfl_course.data.datasets import Dataset

__all__ = ["DatasetUnavailableError", "MNIST_FILES", "MNIST_MIRRORS", "fetch_file", "load_mnist", "read_idx"]

# File name → MD5, as in torchvision's MNIST table.
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# The mirrors torchvision uses (the original host has become unreliable for scripted downloads).
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
_IDX_MAGIC = {0x0801: 1, 0x0803: 3}  # unsigned-byte labels (1-D) and images (3-D)
_CHUNK = 1 << 16
_QUIET_BELOW = 1 << 20  # no progress bar for files under 1 MiB


class DatasetUnavailableError(OSError):
    """A dataset file could not be found or downloaded; the message says how to place it by hand."""


def read_idx(source: str | os.PathLike | bytes) -> np.ndarray:
    """Read an IDX file of unsigned bytes (MNIST's labels or images), gzipped or not.

    Args:
        source: a path, or the file's bytes.

    Returns:
        A uint8 array: shape (n,) for labels, (n, rows, cols) for images.

    Raises:
        ValueError: if the data is not a well-formed IDX file of those two kinds.

    >>> read_idx(bytes([0, 0, 8, 1,  0, 0, 0, 3,  7, 2, 1]))
    array([7, 2, 1], dtype=uint8)
    """
    data = source if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(f"not a readable gzip file: {err}") from None
    if len(data) < 4:
        raise ValueError(f"not an IDX file: {len(data)} bytes is shorter than the header")
    magic = int.from_bytes(data[:4], "big")
    if magic not in _IDX_MAGIC:
        raise ValueError(f"not an IDX file of unsigned bytes with 1 or 3 dimensions: magic number {magic:#010x}")
    ndim = _IDX_MAGIC[magic]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"IDX header truncated: {len(data)} bytes, expected at least {header}")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise ValueError(f"IDX size mismatch: dimensions {shape} need {expected} bytes, the file has {len(data)}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _by_hand(root) -> str:
    names = "\n".join(f"    {name}" for name in MNIST_FILES)
    return (
        f"To use MNIST offline, place the files by hand: download these four .gz files from any "
        f"MNIST mirror\n{names}\ninto the folder {os.fspath(root)} (keep them gzipped), then call "
        f"load_mnist again. The digits data (load_digits) needs no network at all."
    )


def _reason(err: Exception) -> str:
    """A few words on why one download failed."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        err = err.reason if isinstance(err.reason, Exception) else err
    if isinstance(err, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror.lower()
    return str(err) or type(err).__name__


def _is_md5(value) -> bool:
    return isinstance(value, str) and len(value) == 32 and all(ch in "0123456789abcdef" for ch in value.lower())


def _check_mirrors(name: str, value) -> tuple[str, ...]:
    try:
        mirrors = (value,) if isinstance(value, str) else tuple(value)
    except TypeError:
        mirrors = ()
    schemes = ("http://", "https://", "file://")
    if not mirrors or not all(isinstance(m, str) and m.startswith(schemes) for m in mirrors):
        raise ValueError(
            f"{name} must be a URL starting with http://, https:// or file://, or a non-empty list of them, got {value!r}"
        )
    return mirrors


def _download(url: str, dest: Path, *, name: str, md5: str, timeout: float) -> None:
    """Download url into a temporary file beside dest, check its MD5, then rename it to dest."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{name}.", suffix=".part")
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            size = response.headers.get("Content-Length")
            total = int(size) if size and size.isdigit() else None
            quiet = total is None or total < _QUIET_BELOW
            with tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=quiet, leave=False) as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if digest.hexdigest() != md5:
            raise ValueError(f"checksum mismatch (MD5 {digest.hexdigest()}, expected {md5})")
        os.chmod(tmp, 0o644)  # mkstemp makes files private; the data is public, let others read it
        os.replace(tmp, dest)
    finally:
        # After a successful os.replace the temporary name no longer exists.
        if os.path.exists(tmp):
            os.unlink(tmp)


def fetch_file(
    name: str, root: str | os.PathLike, *, md5: str, mirrors=MNIST_MIRRORS, timeout: float = 30.0
) -> Path:
    """Download ``name`` into ``root`` from the first mirror that serves it with the right MD5.

    Args:
        name: the file name, appended to each mirror's base URL.
        root: the folder to write into (created if missing).
        md5: the expected MD5 of the file, as 32 hex digits.
        mirrors: a base URL or a list of them, tried in order (http://, https:// or file://).
        timeout: seconds to wait on each connection, > 0.

    Returns:
        The path of the verified file, ``root / name``.

    Raises:
        ValueError: if ``md5``, ``mirrors`` or ``timeout`` is invalid.
        DatasetUnavailableError: if no mirror delivered the file intact; the message lists each
            mirror's failure and says how to place the files by hand.
    """
    if not _is_md5(md5):
        raise ValueError(f"md5 must be 32 hex digits, got {md5!r}")
    mirrors = _check_mirrors("mirrors", mirrors)
    timeout = check_finite("timeout", timeout, low=0, low_open=True)
    md5 = md5.lower()
    dest = Path(root) / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for mirror in mirrors:
        try:
            _download(mirror.rstrip("/") + "/" + name, dest, name=name, md5=md5, timeout=timeout)
            return dest
        # URLError, HTTPError and timeouts are OSErrors; a cut connection can be an HTTPException.
        except (OSError, ValueError, http.client.HTTPException) as err:
            failures.append(f"  - {mirror}: {_reason(err)}")
    raise DatasetUnavailableError(
        f"Could not download the MNIST file {name}. Mirrors tried:\n" + "\n".join(failures) + "\n" + _by_hand(root)
    )


def _check_checksums(checksums) -> dict[str, str]:
    if checksums is None:
        return dict(MNIST_FILES)
    if not (isinstance(checksums, dict) and all(n in MNIST_FILES and _is_md5(m) for n, m in checksums.items())):
        raise ValueError(
            f"checksums must map MNIST file names ({', '.join(MNIST_FILES)}) to 32-hex-digit MD5s, got {checksums!r}"
        )
    return {**MNIST_FILES, **{name: md5.lower() for name, md5 in checksums.items()}}


def load_mnist(
    *,
    root: str | os.PathLike = "data/mnist",
    download: bool = True,
    mirror: str | list[str] | None = None,
    checksums: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Dataset:
    """Load MNIST (60,000 train and 10,000 test 28×28 images), downloading what is missing.

    Files already in ``root`` with the right MD5 are used as they are; missing or corrupted ones
    are downloaded (when ``download`` is true) from the mirrors in order.

    Args:
        root: folder holding the four ``*-ubyte.gz`` files.
        download: fetch missing or corrupted files; if False, only read what is in ``root``.
        mirror: a base URL or a list of them, tried instead of the default mirrors.
        checksums: file name → MD5, overriding the standard table (for test fixtures).
        timeout: seconds to wait on each connection, > 0.

    Returns:
        A :class:`Dataset`: pixels scaled to [0, 1] and flattened to 784 features,
        ``image_shape=(28, 28)``, 10 classes; train from the 60k files, test from the t10k files.

    Raises:
        ValueError: if an argument is invalid, or a verified file is not well-formed IDX.
        DatasetUnavailableError: if a file is missing or corrupted and cannot be downloaded; the
            message says why and how to place the files by hand.
    """
    if not isinstance(root, (str, os.PathLike)):
        raise ValueError(f"root must be a str or os.PathLike folder, got {root!r}")
    if not isinstance(download, bool):
        raise ValueError(f"download must be True or False, got {download!r}")
    mirrors = MNIST_MIRRORS if mirror is None else _check_mirrors("mirror", mirror)
    md5s = _check_checksums(checksums)
    timeout = check_finite("timeout", timeout, low=0, low_open=True)

    arrays = {}
    for name, md5 in md5s.items():
        path = Path(root) / name
        if not (path.is_file() and _md5(path) == md5):
            if not download:
                state = "has the wrong checksum (corrupted or truncated)" if path.exists() else "is missing"
                raise DatasetUnavailableError(
                    f"The MNIST file {name} {state} in {os.fspath(root)} and download=False.\n" + _by_hand(root)
                )
            fetch_file(name, root, mirrors=mirrors, md5=md5, timeout=timeout)
        arrays[name] = read_idx(path)

    def split(prefix):
        images, labels = arrays[f"{prefix}-images-idx3-ubyte.gz"], arrays[f"{prefix}-labels-idx1-ubyte.gz"]
        if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels) or labels.max(initial=0) > 9:
            raise ValueError(f"MNIST {prefix} files disagree: images {images.shape}, labels {labels.shape}")
        X = torch.from_numpy(images.reshape(len(images), 784)).to(torch.float32) / 255.0
        return X, torch.from_numpy(labels).to(torch.int64)

    X_train, y_train = split("train")
    X_test, y_test = split("t10k")
    return Dataset(
        name="mnist",
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        num_classes=10,
        feature_names=tuple(f"pixel_{r}_{c}" for r in range(28) for c in range(28)),
        target_name="digit",
        class_names=tuple(str(c) for c in range(10)),
        image_shape=(28, 28),
        source="MNIST (LeCun, Cortes & Burges), downloaded from a public mirror; CC BY-SA 3.0",
    )
