"""MNIST download and IDX reading, against real HTTP servers on the loopback interface."""

import functools
import gzip
import hashlib
import os
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from dpfl_course.data.mnist import MNIST_FILES, DatasetUnavailableError, fetch_file, load_mnist, read_idx

NAMES = list(MNIST_FILES)
REAL_T10K = Path(
    os.environ.get("DPFL_MNIST_T10K_DIR")
    or Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "mnist-t10k"
)


def idx_bytes(array: np.ndarray) -> bytes:
    magic = {1: 0x0801, 3: 0x0803}[array.ndim]
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class _CountingHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep the test output clean
        pass

    def do_GET(self):
        self.server.requests.append(self.path.lstrip("/"))
        super().do_GET()


@pytest.fixture(autouse=True)
def _no_proxy_for_loopback(monkeypatch):
    # A proxy set in the environment must not intercept requests to our loopback servers.
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def serve():
    """Start an HTTP server on 127.0.0.1 (free port) serving a folder; all are shut down at teardown."""
    running = []

    def start(directory):
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_CountingHandler, directory=str(directory)))
        server.requests = []
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        thread.start()
        running.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}/", server

    yield start
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def fixture_files(tmp_path):
    """Tiny MNIST look-alikes (20 train and 10 test images) in a folder to serve, with their MD5s."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, size=(20, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": np.arange(20, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, size=(10, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.array([7, 2, 1, 0, 4, 1, 4, 9, 5, 9], dtype=np.uint8),
    }
    arrays["train-images-idx3-ubyte.gz"][0, 0, :2] = (0, 255)  # both ends of the pixel range
    served = tmp_path / "served"
    served.mkdir()
    checksums = {}
    for name, array in arrays.items():
        data = gzip.compress(idx_bytes(array), mtime=0)
        (served / name).write_bytes(data)
        checksums[name] = md5(data)
    return served, arrays, checksums


def assert_matches(data, arrays):
    assert torch.equal(data.X_train, torch.from_numpy(arrays[NAMES[0]].reshape(20, 784) / 255.0).float())
    assert torch.equal(data.y_train, torch.from_numpy(arrays[NAMES[1]]).long())
    assert torch.equal(data.X_test, torch.from_numpy(arrays[NAMES[2]].reshape(10, 784) / 255.0).float())
    assert torch.equal(data.y_test, torch.from_numpy(arrays[NAMES[3]]).long())


def test_downloads_verifies_and_reads(fixture_files, serve, tmp_path):
    served, arrays, checksums = fixture_files
    url, server = serve(served)
    root = tmp_path / "mnist"
    data = load_mnist(root=root, mirror=url, checksums=checksums)
    assert_matches(data, arrays)
    assert data.X_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert data.X.min() == 0.0 and data.X.max() == 1.0
    assert data.image_shape == (28, 28) and data.num_classes == 10 and data.num_features == 784
    assert repr(data) == "Dataset('mnist', train=20, test=10, features=784, classes=10)"
    assert sorted(server.requests) == sorted(NAMES)
    assert sorted(os.listdir(root)) == sorted(NAMES)  # no temporary file left behind


def test_second_call_uses_the_files_on_disk(fixture_files, serve, tmp_path):
    served, arrays, checksums = fixture_files
    url, server = serve(served)
    root = tmp_path / "mnist"
    load_mnist(root=root, mirror=url, checksums=checksums)
    assert len(server.requests) == 4
    assert_matches(load_mnist(root=root, mirror=url, checksums=checksums), arrays)
    assert_matches(load_mnist(root=str(root), download=False, checksums=checksums), arrays)
    assert len(server.requests) == 4


def test_truncated_file_is_fetched_again(fixture_files, serve, tmp_path):
    served, arrays, checksums = fixture_files
    url, server = serve(served)
    root = tmp_path / "mnist"
    load_mnist(root=root, mirror=url, checksums=checksums)
    broken = root / "train-images-idx3-ubyte.gz"
    broken.write_bytes(broken.read_bytes()[:100])
    assert_matches(load_mnist(root=root, mirror=url, checksums=checksums), arrays)
    assert server.requests[4:] == ["train-images-idx3-ubyte.gz"]
    assert md5(broken.read_bytes()) == checksums["train-images-idx3-ubyte.gz"]


def test_wrong_bytes_from_the_server_leave_nothing_behind(fixture_files, serve, tmp_path):
    served, arrays, checksums = fixture_files
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in NAMES:
        (bad / name).write_bytes(b"\x1f\x8b not what you asked for " + name.encode())
    url, _ = serve(bad)
    root = tmp_path / "mnist"
    with pytest.raises(DatasetUnavailableError, match="checksum mismatch") as caught:
        load_mnist(root=root, mirror=url, checksums=checksums)
    assert isinstance(caught.value, OSError)
    assert os.listdir(root) == []  # neither the final name nor a temporary file


def test_first_mirror_failing_falls_back_to_the_second(fixture_files, serve, tmp_path):
    served, arrays, checksums = fixture_files
    empty = tmp_path / "empty"
    empty.mkdir()
    missing_url, missing = serve(empty)
    url, server = serve(served)
    data = load_mnist(root=tmp_path / "mnist", mirror=[missing_url, url], checksums=checksums)
    assert_matches(data, arrays)
    assert sorted(missing.requests) == sorted(NAMES) and sorted(server.requests) == sorted(NAMES)


def test_all_mirrors_failing_explains_each_failure(fixture_files, serve, tmp_path):
    _, _, checksums = fixture_files
    empty = tmp_path / "empty"
    empty.mkdir()
    url, _ = serve(empty)
    with socket.socket() as idle:  # bound but not listening: connections are refused
        idle.bind(("127.0.0.1", 0))
        refused_url = f"http://127.0.0.1:{idle.getsockname()[1]}/"
        with pytest.raises(DatasetUnavailableError) as caught:
            load_mnist(root=tmp_path / "mnist", mirror=[url, refused_url], checksums=checksums, timeout=5)
    message = str(caught.value)
    assert f"{url}: HTTP 404" in message and f"{refused_url}: connection refused" in message
    assert "train-images-idx3-ubyte.gz" in message.splitlines()[0]


def test_unreachable_mirror_says_how_to_place_files_by_hand(fixture_files, tmp_path, monkeypatch):
    _, _, checksums = fixture_files
    monkeypatch.chdir(tmp_path)
    with socket.socket() as idle:
        idle.bind(("127.0.0.1", 0))
        with pytest.raises(DatasetUnavailableError) as caught:
            load_mnist(root="data/mnist", mirror=f"http://127.0.0.1:{idle.getsockname()[1]}", checksums=checksums)
    message = str(caught.value)
    assert "by hand" in message and all(name in message for name in NAMES)
    assert "into the folder data/mnist" in message and str(tmp_path) not in message
    assert os.listdir(tmp_path / "data" / "mnist") == []


def test_silent_server_times_out(fixture_files, tmp_path):
    _, _, checksums = fixture_files
    with socket.socket() as silent:  # listens, so connecting works, but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        with pytest.raises(DatasetUnavailableError, match=f"{url}: timed out"):
            load_mnist(root=tmp_path / "mnist", mirror=url, checksums=checksums, timeout=0.2)
    assert os.listdir(tmp_path / "mnist") == []


def test_without_download_missing_or_corrupted_files_are_reported(fixture_files, tmp_path):
    served, arrays, checksums = fixture_files
    root = tmp_path / "mnist"
    with pytest.raises(DatasetUnavailableError, match="(?s)is missing.*download=False.*by hand"):
        load_mnist(root=root, download=False, checksums=checksums)
    assert not root.exists()  # reading only: nothing created
    root.mkdir()
    for name in NAMES:
        (root / name).write_bytes((served / name).read_bytes())
    (root / NAMES[3]).write_bytes(b"garbage")
    with pytest.raises(DatasetUnavailableError, match=f"{NAMES[3]} has the wrong checksum"):
        load_mnist(root=root, download=False, checksums=checksums)


def test_file_mirror(fixture_files, tmp_path):
    served, _, checksums = fixture_files
    path = fetch_file(NAMES[1], tmp_path / "mnist", mirrors=[served.as_uri()], md5=checksums[NAMES[1]])
    assert path == tmp_path / "mnist" / NAMES[1] and path.read_bytes() == (served / NAMES[1]).read_bytes()


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(mirror="ftp://example.org/mnist/"), "mirror"),
        (dict(mirror="example.org/mnist"), "mirror"),
        (dict(mirror=[]), "mirror"),
        (dict(mirror=["https://ok.example/", 3]), "mirror"),
        (dict(mirror=3), "mirror"),
        (dict(timeout=0), "timeout"),
        (dict(timeout=float("nan")), "timeout"),
        (dict(root=3), "root"),
        (dict(download="yes"), "download"),
        (dict(checksums={"mnist.npz": "0" * 32}), "checksums"),
        (dict(checksums={NAMES[0]: "not-an-md5"}), "checksums"),
    ],
)
def test_rejects_bad_arguments(kwargs, name, tmp_path):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        load_mnist(**{"root": tmp_path, **kwargs})


@pytest.mark.parametrize(
    "kwargs, name",
    [(dict(md5="abc"), "md5"), (dict(mirrors="ftp://x/"), "mirrors"), (dict(timeout=-1), "timeout")],
)
def test_fetch_file_rejects_bad_arguments(kwargs, name, tmp_path):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        fetch_file(NAMES[0], tmp_path, **{"md5": "0" * 32, **kwargs})
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- read_idx

def test_read_idx_reads_paths_and_bytes_gzipped_or_not(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = idx_bytes(images)
    (tmp_path / "images.gz").write_bytes(gzip.compress(raw))
    (tmp_path / "images").write_bytes(raw)
    for source in (raw, gzip.compress(raw), tmp_path / "images", str(tmp_path / "images.gz")):
        out = read_idx(source)
        assert out.dtype == np.uint8 and np.array_equal(out, images)
    assert np.array_equal(read_idx(idx_bytes(np.array([3, 1, 4], dtype=np.uint8))), [3, 1, 4])


GOOD = idx_bytes(np.zeros((2, 3, 3), dtype=np.uint8))


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "shorter than the header"),
        (b"\x00\x00\x08", "shorter than the header"),
        (b"\x00\x00\x0d\x01" + GOOD[4:], "magic number"),  # float data, not unsigned bytes
        (b"\x00\x00\x08\x02" + GOOD[4:], "magic number"),  # 2-D
        (b"PK\x03\x04" + GOOD[4:], "magic number"),
        (GOOD[:10], "header truncated"),
        (GOOD[:-1], "size mismatch"),
        (GOOD + b"\x00", "size mismatch"),
        (gzip.compress(GOOD, mtime=0)[:-12], "gzip"),  # mtime=0: same test id on every xdist worker
        (b"\x1f\x8b\x08\x00garbage", "gzip"),
    ],
    ids=["empty", "short", "float", "2-D", "zip", "header", "short-body", "long-body", "cut-gzip", "bad-gzip"],
)
def test_read_idx_rejects_malformed_files(data, message):
    with pytest.raises(ValueError, match=message):
        read_idx(data)


# ---------------------------------------------------------------- the real MNIST test set

@pytest.fixture
def real_t10k():
    if not all((REAL_T10K / name).is_file() for name in NAMES[2:]):
        pytest.skip(f"real MNIST t10k files not found in {REAL_T10K} (set DPFL_MNIST_T10K_DIR)")
    return REAL_T10K


def test_real_t10k_files_download_verify_and_read(real_t10k, serve, tmp_path):
    url, server = serve(real_t10k)
    images = read_idx(fetch_file(NAMES[2], tmp_path, mirrors=[url], md5=MNIST_FILES[NAMES[2]]))
    labels = read_idx(fetch_file(NAMES[3], tmp_path, mirrors=[url], md5=MNIST_FILES[NAMES[3]]))
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10_000,) and labels.min() == 0 and labels.max() == 9
    counts = np.bincount(labels, minlength=10)
    assert counts.sum() == 10_000 and counts.min() > 800
    assert labels[0] == 7 and list(labels[:5]) == [7, 2, 1, 0, 4]  # the well-known first test digits
    assert images.max() == 255 and images[0].sum() > 0
    assert sorted(server.requests) == sorted(NAMES[2:])


def test_real_t10k_through_load_mnist(real_t10k, fixture_files, serve, tmp_path):
    # Real test files with the standard checksums, tiny look-alike training files with overridden ones.
    served, arrays, checksums = fixture_files
    for name in NAMES[2:]:
        (served / name).unlink()
        (served / name).symlink_to((real_t10k / name).resolve())
    url, _ = serve(served)
    data = load_mnist(root=tmp_path / "mnist", mirror=url, checksums={n: checksums[n] for n in NAMES[:2]})
    assert data.num_train == 20 and data.num_test == 10_000
    assert data.y_test[0] == 7 and 0 <= data.X_test.min() and data.X_test.max() == 1
