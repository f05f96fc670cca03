"""core/multipart: the body a streamed upload sends, parsed back by werkzeug's form parser."""

import io

from werkzeug.formparser import parse_form_data

from gensvc.core.multipart import MultipartFile


def parsed(body: MultipartFile, data: bytes):
    environ = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": body.content_type, "CONTENT_LENGTH": str(len(data)),
               "wsgi.input": io.BytesIO(data)}
    _, form, files = parse_form_data(environ)
    return form, files


def read_all(body: MultipartFile, block: int) -> bytes:
    out = b""
    while True:
        piece = body.read(block)
        if not piece:
            return out
        out += piece


def test_the_body_holds_the_fields_then_the_file_and_is_as_long_as_it_says(tmp_path):
    path = tmp_path / "calls.vcf"
    path.write_bytes(bytes(range(256)) * 1000)
    body = MultipartFile({"study": "gensvc@demo:demo", "relativeFilePath": "data/"}, "file", path, 'odd "name".vcf')
    data = read_all(body, 7000)
    assert len(data) == len(body)
    form, files = parsed(body, data)
    assert form["study"] == "gensvc@demo:demo" and form["relativeFilePath"] == "data/"
    assert files["file"].read() == path.read_bytes()
    assert data.index(b'name="study"') < data.index(b'name="file"')


def test_a_body_read_to_its_end_is_read_again_from_the_start(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"x" * 100_001)
    body = MultipartFile({"a": "1"}, "file", path, "x.bin")
    first, second = read_all(body, 4096), read_all(body, 1 << 20)
    assert first == second and len(first) == len(body)
