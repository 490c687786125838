"""Text encoders: real MiniLM (offline, from its wheel), any HF encoder with a chosen pooling,
the tiny preset, and the remote OpenAI-compatible client against a local fake server."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import numpy as np
import pytest

from search.errors import UnknownModelError, WeightsNotFoundError
from search.models.text import (
    EmbeddingServiceError,
    RemoteEmbeddingEncoder,
    load_text_encoder,
    parse_pooling,
)


@pytest.fixture(scope="module")
def minilm():
    return load_text_encoder("all-minilm-l6-v2")


def _assert_unit_rows(vectors: np.ndarray, n: int, dim: int):
    assert vectors.shape == (n, dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_minilm_ranks_by_meaning_offline(minilm):
    notes = [
        "My cat sleeps on the sofa all afternoon and purrs when I come home.",
        "The car needs new tyres and an oil change before the trip.",
    ]
    vectors = minilm.encode_texts(notes)
    _assert_unit_rows(vectors, 2, 384)
    query = minilm.encode_texts(["feline"])[0]
    cat, car = vectors @ query
    assert cat > car + 0.1
    assert minilm.name == "all-minilm-l6-v2" and minilm.dim == 384
    assert (minilm.resolve() / "model.safetensors").is_file()
    assert minilm.fingerprint == load_text_encoder("all-minilm-l6-v2").fingerprint
    assert minilm.encode_texts([]).shape == (0, 384)


@pytest.mark.slow
def test_any_hf_encoder_with_mean_pooling_matches_sentence_transformers(minilm):
    folder = minilm.resolve()
    texts = ["a dog on the beach", "quarterly budget review", "x"]
    pooled = load_text_encoder(f"hf:{folder}@mean")
    assert pooled.name == f"hf:{folder}@mean"
    np.testing.assert_allclose(
        pooled.encode_texts(texts), minilm.encode_texts(texts), atol=1e-4, rtol=0
    )
    for pooling in ("cls", "max", "mean-last2"):
        other = load_text_encoder(f"hf:{folder}@{pooling}")
        vectors = other.encode_texts(texts)
        _assert_unit_rows(vectors, 3, 384)
        assert not np.allclose(vectors, minilm.encode_texts(texts), atol=1e-3)
        assert other.fingerprint != pooled.fingerprint  # the name, with its pooling, is in it


def test_tiny_text_preset_is_deterministic():
    a = load_text_encoder("tiny-text")
    b = load_text_encoder("tiny-text")
    texts = ["one", "two words", "three words here"]
    np.testing.assert_array_equal(a.encode_texts(texts), b.encode_texts(texts))
    _assert_unit_rows(a.encode_texts(texts), 3, 32)
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 16


def test_names_and_poolings_that_do_not_exist():
    with pytest.raises(UnknownModelError, match="all-minilm-l6-v2"):
        load_text_encoder("bert-base")
    with pytest.raises(UnknownModelError, match="cls, mean or max"):
        load_text_encoder("hf:some/model@median")
    assert parse_pooling("CLS-last4") == ("cls", 4)
    with pytest.raises(UnknownModelError):
        parse_pooling("mean-last0")


def test_missing_local_and_hub_weights_say_where_they_looked(tmp_path, monkeypatch):
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        load_text_encoder(f"hf:{tmp_path}/nothing-here").resolve()
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsNotFoundError, match="holds no weights"):
        load_text_encoder(f"st:{tmp_path}/empty").resolve()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match="HF_HUB_OFFLINE"):
        load_text_encoder("st:someone/not-cached-model").resolve()


# ---- the remote client against a local server that speaks the OpenAI embeddings API ----------


def fake_embedding(text: str, dim: int = 8) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
    return (np.random.default_rng(seed).normal(size=dim) * 3).tolist()  # not unit length


class FakeEmbeddingsServer:
    """`script` is a list of responses to give in turn ("ok" answers properly); afterwards
    every request is answered properly."""

    def __init__(self, script=(), key: str | None = None):
        self.script = list(script)
        self.key = key
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(
                    {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
                )
                step = server.script.pop(0) if server.script else "ok"
                if server.key and self.headers.get("Authorization") != f"Bearer {server.key}":
                    step = (401, {"error": {"message": "Incorrect API key provided"}})
                if step == "ok":
                    rows = [
                        {"object": "embedding", "index": i, "embedding": fake_embedding(t)}
                        for i, t in enumerate(body["input"])
                    ]
                    self._send(200, {"object": "list", "data": rows[::-1], "model": "m"})
                elif step == "garbage":
                    self._send(200, b"<html>Welcome to nginx</html>")
                else:
                    status, payload = step[0], step[1]
                    headers = step[2] if len(step) > 2 else {}
                    self._send(status, payload, headers)

            def _send(self, status, payload, headers=None):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(*script, key=None):
        servers.append(FakeEmbeddingsServer(script, key))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def remote(url, **options):
    options.setdefault("backoff_s", 0.01)
    return load_text_encoder("openai:text-embedding-3-small", base_url=url, **options)


def test_remote_batches_keeps_order_and_normalises(serve):
    server = serve(key="sk-test")
    encoder = remote(server.url, api_key="sk-test", batch_size=2)
    texts = ["alpha", "beta", "gamma", "delta", "epsilon"]
    vectors = encoder.encode_texts(texts)
    _assert_unit_rows(vectors, 5, 8)
    expected = np.array([fake_embedding(t) for t in texts])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, atol=1e-6)  # rows came back reversed
    assert [len(r["body"]["input"]) for r in server.requests] == [2, 2, 1]
    assert {r["path"] for r in server.requests} == {"/v1/embeddings"}
    assert server.requests[0]["body"]["model"] == "text-embedding-3-small"
    assert server.requests[0]["auth"] == "Bearer sk-test"
    assert encoder.name == "openai:text-embedding-3-small" and encoder.dim == 8


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The pauses the remote client takes between attempts, recorded instead of slept."""
    from search.models import text

    recorded: list[float] = []
    monkeypatch.setattr(text, "time", SimpleNamespace(sleep=recorded.append))
    return recorded


def test_remote_retries_a_server_error_then_succeeds(serve, waits):
    server = serve((500, {"error": "overloaded"}), (503, b"busy"), "ok")
    vectors = remote(server.url).encode_texts(["hello"])
    _assert_unit_rows(vectors, 1, 8)
    assert len(server.requests) == 3
    assert waits == [0.01, 0.02]  # backoff_s, then twice that


def test_remote_honours_retry_after_on_429(serve, waits):
    server = serve((429, {"error": "slow down"}, {"Retry-After": "2"}), "ok")
    remote(server.url, backoff_s=30).encode_texts(["hello"])
    assert len(server.requests) == 2
    assert waits == [2.0]  # the server's wait, not the 30 s back-off


def test_remote_gives_up_after_its_retries(serve):
    server = serve(*[(502, b"bad gateway")] * 10)
    with pytest.raises(EmbeddingServiceError, match="failed 3 times: HTTP 502"):
        remote(server.url, max_retries=2).encode_texts(["hello"])
    assert len(server.requests) == 3


def test_remote_wrong_key_fails_at_once_with_what_to_set(serve):
    server = serve(key="right")
    with pytest.raises(EmbeddingServiceError, match="refused the API key.*TROVE_EMBEDDINGS_KEY"):
        remote(server.url, api_key="wrong").encode_texts(["hello"])
    assert len(server.requests) == 1


def test_remote_unreachable_says_so():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    encoder = remote(f"http://127.0.0.1:{port}/v1", max_retries=1)
    with pytest.raises(EmbeddingServiceError, match="unreachable.*TROVE_EMBEDDINGS_URL"):
        encoder.resolve()


def test_remote_malformed_answers(serve):
    server = serve("garbage", (200, {"data": [{"index": 0}]}), (200, {"data": []}))
    encoder = remote(server.url)
    with pytest.raises(EmbeddingServiceError, match="not an OpenAI embeddings response"):
        encoder.encode_texts(["a"])
    with pytest.raises(EmbeddingServiceError, match="not an OpenAI embeddings response"):
        encoder.encode_texts(["a"])
    with pytest.raises(EmbeddingServiceError, match="expected one finite vector per text"):
        encoder.encode_texts(["a"])


def test_remote_bad_request_is_not_retried(serve):
    server = serve((404, {"error": {"message": "model not found"}}))
    with pytest.raises(EmbeddingServiceError, match="HTTP 404: model not found"):
        remote(server.url).encode_texts(["a"])
    assert len(server.requests) == 1


def test_remote_settings_come_from_the_environment(serve, monkeypatch):
    server = serve(key="from-env")
    monkeypatch.setenv("TROVE_EMBEDDINGS_URL", server.url)
    monkeypatch.setenv("TROVE_EMBEDDINGS_KEY", "from-env")
    encoder = load_text_encoder("openai:local-model")
    assert isinstance(encoder, RemoteEmbeddingEncoder)
    assert encoder.resolve() == f"{server.url}/embeddings"
    assert encoder.dim == 8
    first = encoder.fingerprint
    assert first == load_text_encoder("openai:local-model", dim=8).fingerprint
    assert first != load_text_encoder("openai:other-model", dim=8).fingerprint
