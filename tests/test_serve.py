import asyncio
import base64
import io
import struct
import time
import urllib.parse
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import on_paper
from digitrec.batching import Batcher
from digitrec.connections import default_allowed_hosts
from digitrec.limits import Limits
from digitrec.loading import load_model
from digitrec.serve import create_app

fastapi_testclient = pytest.importorskip("fastapi.testclient")


@pytest.fixture(scope="module")
def rec(small_model_path):
    return load_model(small_model_path)


@pytest.fixture(scope="module")
def client(rec):
    limits = Limits(max_body_bytes=2 * 2**20, max_pixels=4_000_000, max_images=8, timeout_s=30)
    with fastapi_testclient.TestClient(create_app(rec, limits=limits)) as c:
        yield c


def png(img) -> bytes:
    buf = io.BytesIO()
    (img if isinstance(img, Image.Image) else Image.fromarray(np.asarray(img, np.uint8))).save(buf, "PNG")
    return buf.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb's shape)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def digits(one_of_each):
    return {label: png(on_paper(x)) for x, label in one_of_each}


def test_health_and_model_metadata(client, rec):
    assert client.get("/healthz").json() == {"status": "ok"}
    info = client.get("/v1/model").json()
    assert info["arch"] == rec.checkpoint.arch and info["backend"] == "torch"
    assert info["normalization"] == {"mean": rec.mean, "std": rec.std}
    assert info["classes"] == [str(d) for d in range(10)]
    assert info["metrics"]["test"]["accuracy"] > 0.95
    assert client.get("/docs").status_code == 200 and "/v1/predict" in client.get("/openapi.json").json()["paths"]


def test_raw_body_and_multipart_give_the_library_answer(client, rec, digits):
    raw = client.post("/v1/predict", content=digits[3], headers={"Content-Type": "image/png"})
    assert raw.status_code == 200
    (r,) = raw.json()["results"]
    expected = rec.predict([digits[3]])[0]
    assert r["digit"] == expected.digit == 3
    assert np.allclose(r["probabilities"], expected.probabilities, atol=1e-6)
    assert abs(sum(r["probabilities"]) - 1) < 1e-4 and r["confidence"] == max(r["probabilities"])
    files = [("file", (f"{d}.png", digits[d], "image/png")) for d in (0, 7, 9)]
    multi = client.post("/v1/predict", files=files).json()["results"]
    assert [m["digit"] for m in multi] == [0, 7, 9]
    assert [m["filename"] for m in multi] == ["0.png", "7.png", "9.png"]


def test_preprocessed_view_is_the_28x28_the_model_got(client, rec, digits):
    r = client.post("/v1/predict?preprocessed=true", content=digits[5], headers={"Content-Type": "image/png"}).json()["results"][0]
    head, data = r["preprocessed"].split(",", 1)
    assert head == "data:image/png;base64"
    view = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))
    want = rec.predict([digits[5]], keep_preprocessed=True)[0].preprocessed.image
    assert view.shape == (28, 28) and np.abs(view / 255 - want).max() <= 1 / 255 + 1e-6


def test_a_blank_page_is_no_digit_not_a_guess(client):
    r = client.post("/v1/predict", content=png(Image.new("L", (200, 200), 255)), headers={"Content-Type": "image/png"})
    assert r.status_code == 200
    res = r.json()["results"][0]
    assert res["digit"] is None and res["no_digit"] is True


BAD_REQUESTS = {
    "json body": (dict(content=b'{"image": 1}', headers={"Content-Type": "application/json"}), 415),
    "text body": (dict(content=b"seven", headers={"Content-Type": "text/plain"}), 415),
    "empty body": (dict(content=b"", headers={"Content-Type": "image/png"}), 400),
    "garbage bytes": (dict(content=bytes(range(256)) * 4, headers={"Content-Type": "image/png"}), 422),
    "multipart without files": (dict(files={"note": (None, "hello")}), 400),
    "malformed multipart": (dict(content=b"--x\r\nnonsense", headers={"Content-Type": "multipart/form-data; boundary=x"}), 400),
    "decompression bomb": (dict(content=bomb_png(30000, 30000), headers={"Content-Type": "image/png"}), 413),
    "oversized body": (dict(content=b"\0" * (3 * 2**20), headers={"Content-Type": "image/png"}), 413),
    "too many images": (dict(files=[("f", (f"{i}.png", b"x", "image/png")) for i in range(9)]), 413),
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_bad_requests_get_a_4xx_with_a_json_error(client, name):
    kwargs, status = BAD_REQUESTS[name]
    r = client.post("/v1/predict", **kwargs)
    assert r.status_code == status, r.text
    assert isinstance(r.json()["error"], str) and r.json()["error"]


def test_truncated_image_is_refused_and_a_good_one_beside_it_still_read(client, digits):
    cut = digits[2][: len(digits[2]) // 2]
    r = client.post("/v1/predict", content=cut, headers={"Content-Type": "image/png"})
    assert r.status_code == 422 and "error" in r.json()["results"][0]
    mixed = client.post("/v1/predict", files=[("a", ("cut.png", cut, "image/png")), ("b", ("two.png", digits[2], "image/png"))])
    assert mixed.status_code == 200
    bad, good = mixed.json()["results"]
    assert "error" in bad and good["digit"] == 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=2000), ctype=st.sampled_from(["image/png", "image/jpeg", "application/octet-stream", ""]))
def test_arbitrary_bytes_never_get_a_500(client, body, ctype):
    r = client.post("/v1/predict", content=body, headers={"Content-Type": ctype} if ctype else {})
    assert 200 <= r.status_code < 500
    assert "error" in r.json() or "results" in r.json()


def test_server_still_answers_after_the_bad_requests(client, digits):
    for kwargs, _ in BAD_REQUESTS.values():
        client.post("/v1/predict", **kwargs)
    r = client.post("/v1/predict", content=digits[8], headers={"Content-Type": "image/png"})
    assert r.status_code == 200 and r.json()["results"][0]["digit"] == 8


def test_concurrent_requests_share_one_forward_pass(rec, one_of_each):
    images = [rec.predict([on_paper(x)], keep_preprocessed=True)[0].preprocessed.image[None] for x, _ in one_of_each]

    async def main():
        batcher = Batcher(rec)
        task = asyncio.create_task(batcher.run())
        await asyncio.sleep(0)
        out = await asyncio.gather(*[batcher.classify(im) for im in images])
        task.cancel()
        return batcher.passes, out

    passes, out = asyncio.run(main())
    assert passes == 1  # ten requests queued together, one pass
    assert [int(o.argmax()) for o in out] == [label for _, label in one_of_each]
    expected = rec.probabilities(np.concatenate(images))
    assert all(np.allclose(o[0], e, atol=1e-6) for o, e in zip(out, expected))


def test_page_and_its_assets_are_served_locally(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="pad"' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN
    for asset in ("/static/app.js", "/static/style.css"):
        r = client.get(asset)
        assert r.status_code == 200 and "https://" not in r.text


def test_an_unreadable_upload_is_named_by_the_file_name_sent(client):
    r = client.post("/v1/predict", files=[("file", ("scan-0042.png", b"not a picture" * 10, "image/png"))])
    assert r.status_code == 422
    assert r.json()["error"].startswith("scan-0042.png: not an image") and "image bytes" not in r.text
    assert r.json()["results"][0]["filename"] == "scan-0042.png"


def test_model_metadata_holds_no_local_path(client, rec):
    info = client.get("/v1/model")
    assert '"/' not in info.text and rec.checkpoint.path.parent.name not in info.text  # no absolute path, no run folder
    assert info.json()["file"] == rec.checkpoint.path.name


def test_a_host_name_not_allowed_is_refused(rec):
    app = create_app(rec, allowed_hosts=default_allowed_hosts("127.0.0.1"))
    with fastapi_testclient.TestClient(app, base_url="http://127.0.0.1:8000") as c:
        for host in ("127.0.0.1:8000", "localhost", "[::1]:8000"):
            assert c.get("/healthz", headers={"Host": host}).status_code == 200, host
        for host in ("evil.example", "localhost.evil.example:8000", ""):
            r = c.get("/v1/model", headers={"Host": host})
            assert r.status_code == 400 and "host" in r.json()["error"], host
    assert default_allowed_hosts("0.0.0.0") == ("*",)


def blank_page(width=4000, height=3000) -> bytes:
    """A white page of width x height pixels: 18 KB as a PNG, about a second to preprocess."""
    return png(Image.new("L", (width, height), 255))


def test_pixels_in_flight_are_bounded_413_over_the_budget_503_when_full(rec):
    limits = Limits(max_pixels=12_000_000, pixels_in_flight=30_000_000, timeout_s=120)
    page = blank_page()  # 12,000,000 pixels
    with fastapi_testclient.TestClient(create_app(rec, limits=limits)) as c:
        over = c.post("/v1/predict", files=[("f", (f"{i}.png", page, "image/png")) for i in range(3)])
        assert over.status_code == 413 and "30,000,000" in over.json()["error"]
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(c.post, "/v1/predict", files=[("f", (f"{i}.png", page, "image/png")) for i in range(2)])
            pixels = c.app.state.workers.pixels
            while pixels.in_use == 0 and not first.done():
                time.sleep(0.01)
            full = c.post("/v1/predict", content=page, headers={"Content-Type": "image/png"})
            assert first.result().status_code == 200
        assert full.status_code == 503 and full.headers["Retry-After"] == "1" and "busy" in full.json()["error"]
        assert pixels.in_use == 0 and c.post("/v1/predict", content=page, headers={"Content-Type": "image/png"}).status_code == 200


def test_a_timed_out_request_stops_preprocessing_its_images(rec):
    limits = Limits(max_pixels=12_000_000, max_images=16, pixels_in_flight=16 * 12_000_000, timeout_s=0.2)
    page = blank_page()
    with fastapi_testclient.TestClient(create_app(rec, limits=limits)) as c:
        r = c.post("/v1/predict", files=[("f", (f"{i}.png", page, "image/png")) for i in range(16)])
        assert r.status_code == 408 and "error" in r.json()
        workers = c.app.state.workers
        while workers.pixels.in_use:  # held until the thread has finished the images in hand
            time.sleep(0.05)
        assert workers.images_done <= rec.workers < 16  # at most the chunk in hand: the rest were never decoded


@pytest.mark.parametrize("method, path, status, says", [
    ("GET", "/no/such/page", 404, "nothing at /no/such/page"),
    ("GET", "/v1/predict", 405, "use POST"),
    ("POST", "/v1/predict?preprocessed=maybe", 422, "query preprocessed"),
])
def test_fastapis_own_refusals_are_json_errors_too(client, digits, method, path, status, says):
    r = client.request(method, path, content=digits[1] if method == "POST" else None, headers={"Content-Type": "image/png"})
    assert r.status_code == status and set(r.json()) == {"error"}, r.text
    assert says in r.json()["error"]


def test_too_many_form_fields_is_a_413_that_says_which_limit(client, digits):
    fields = {f"note{i}": "x" for i in range(40)}
    r = client.post("/v1/predict", data=fields, files=[("file", ("7.png", digits[7], "image/png"))])
    assert r.status_code == 413 and "8 form fields" in r.json()["error"], r.text


def _named_by_rfc_5987(name: str, data: bytes) -> tuple[bytes, str]:
    """A multipart body of one file whose name is given only as filename*=UTF-8''..., percent-encoded."""
    disposition = f"form-data; name=\"file\"; filename*=UTF-8''{urllib.parse.quote(name)}"
    body = f"--b0\r\nContent-Disposition: {disposition}\r\nContent-Type: image/png\r\n\r\n".encode() + data
    return body + b"\r\n--b0--\r\n", "multipart/form-data; boundary=b0"


def test_an_upload_named_by_rfc_5987_filename_star_is_read_and_named(client, digits):
    body, ctype = _named_by_rfc_5987("été №4.png", digits[4])
    r = client.post("/v1/predict", content=body, headers={"Content-Type": ctype})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["filename"] == "été №4.png" and r.json()["results"][0]["digit"] == 4
    body, ctype = _named_by_rfc_5987("reçu.png", b"not a picture" * 10)
    r = client.post("/v1/read", content=body, headers={"Content-Type": ctype})
    assert r.status_code == 422 and r.json()["error"].startswith("reçu.png: "), r.text
