"""gensvc.core.files: one SHA-256 and one atomic replacement for every module."""

import hashlib
import json
import os

import pytest

from gensvc.core.files import file_sha256, replace_json, replace_text


def test_a_files_sha256_is_that_of_its_bytes_across_blocks(tmp_path):
    data = os.urandom((1 << 20) + 17)  # more than one read block
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()


def test_replaced_json_is_sorted_ends_in_a_newline_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "doc.json"
    path.write_text("old")
    replace_json(path, {"b": 1, "a": [1, 2]})
    text = path.read_text()
    assert text.endswith("\n") and text.index('"a"') < text.index('"b"')
    assert json.loads(text) == {"a": [1, 2], "b": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["doc.json"]


def test_a_write_that_fails_leaves_the_old_file_whole_and_no_temporary_file(tmp_path):
    path = tmp_path / "doc.json"
    path.write_text("old\n")
    with pytest.raises(TypeError):
        replace_json(path, {"not json": object()})
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["doc.json"]


def test_text_replaced_into_a_directory_that_is_gone_raises_and_writes_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        replace_text(tmp_path / "missing" / "x.txt", "text")
    assert list(tmp_path.iterdir()) == []
