"""gensvc.core.download.extract_members: a result archive is checked whole before any
member is copied out; an unsafe or damaged one is refused and nothing is written."""

import stat
import struct
import zipfile

import pytest

from gensvc.core.download import ZipLimits, extract_members
from gensvc.errors import ServiceUnavailable

LIMITS = ZipLimits(max_files=10, max_total_bytes=50 << 20, max_ratio=100.0)


def make_zip(path, members, compression=zipfile.ZIP_DEFLATED):
    """``members``: name -> bytes, or a ZipInfo -> bytes for what writestr cannot say."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return str(path)


def refused(zip_path, wanted, limits=LIMITS):
    with pytest.raises(ServiceUnavailable, match="refusing the result archive") as caught:
        extract_members(zip_path, wanted, limits)
    return str(caught.value)


def test_the_wanted_members_are_copied_out_and_their_sizes_returned(tmp_path):
    archive = make_zip(tmp_path / "r.zip", {"main.tsv": b"a\tb\n1\t2\n", "log.txt": b"ok\n", "extra.txt": b"x"})
    wanted = {"main.tsv": str(tmp_path / "main.tsv"), "log.txt": str(tmp_path / "log.txt")}
    assert extract_members(archive, wanted, LIMITS) == {"main.tsv": 8, "log.txt": 3}
    assert (tmp_path / "main.tsv").read_bytes() == b"a\tb\n1\t2\n"
    assert not list(tmp_path.glob("*.part")) and not (tmp_path / "extra.txt").exists()


@pytest.mark.parametrize("name", ["../escape.txt", "sub/../../escape.txt", "/etc/escape.txt", "\\escape.txt",
                                  "C:/escape.txt", "sub\\..\\..\\escape.txt"])
def test_a_member_that_would_land_outside_the_destination_is_refused(tmp_path, name):
    archive = make_zip(tmp_path / "r.zip", {"main.tsv": b"ok\n", name: b"bad\n"})
    assert "outside the destination" in refused(archive, {"main.tsv": str(tmp_path / "main.tsv")})
    assert not (tmp_path / "main.tsv").exists()  # checked whole before anything is copied


def test_a_symlink_member_is_refused(tmp_path):
    link = zipfile.ZipInfo("main.tsv")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = make_zip(tmp_path / "r.zip", {link: b"/etc/passwd"})
    assert "is a link" in refused(archive, {"main.tsv": str(tmp_path / "main.tsv")})
    assert not (tmp_path / "main.tsv").exists()


def test_a_member_that_expands_past_the_ratio_is_refused_as_a_bomb(tmp_path):
    archive = make_zip(tmp_path / "r.zip", {"main.tsv": bytes(8 << 20)})  # 8 MiB of zeros, ~1000:1
    assert "expands" in refused(archive, {"main.tsv": str(tmp_path / "main.tsv")})


def test_a_small_member_that_compresses_well_is_not_a_bomb(tmp_path):
    archive = make_zip(tmp_path / "r.zip", {"main.tsv": bytes(100_000)})
    assert extract_members(archive, {"main.tsv": str(tmp_path / "main.tsv")}, LIMITS) == {"main.tsv": 100_000}


def test_an_archive_expanding_past_the_total_is_refused(tmp_path):
    archive = make_zip(tmp_path / "r.zip", {f"part{n}": bytes(600) for n in range(3)}, zipfile.ZIP_STORED)
    limits = ZipLimits(max_files=10, max_total_bytes=1500, max_ratio=100.0)
    assert "over 1500 bytes" in refused(archive, {"part0": str(tmp_path / "p0")}, limits)


def test_an_archive_with_too_many_files_is_refused(tmp_path):
    archive = make_zip(tmp_path / "r.zip", {f"f{n}.txt": b"x" for n in range(4)})
    limits = ZipLimits(max_files=3, max_total_bytes=1 << 20, max_ratio=100.0)
    assert "4 members, more than 3" in refused(archive, {"f0.txt": str(tmp_path / "f0")}, limits)


def lie_about_size(path, told: int) -> None:
    """Rewrite the member's uncompressed size, in its local and central headers, to ``told``."""
    data = bytearray(open(path, "rb").read())
    local = data.index(b"PK\x03\x04")
    struct.pack_into("<I", data, local + 22, told)
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, told)
    open(path, "wb").write(bytes(data))


def test_a_member_whose_headers_lie_about_its_size_is_refused_and_not_written(tmp_path):
    archive = make_zip(tmp_path / "r.zip", {"main.tsv": b"0123456789" * 1000}, zipfile.ZIP_STORED)
    lie_about_size(archive, 10)
    message = refused(archive, {"main.tsv": str(tmp_path / "main.tsv")})
    assert "larger than it says" in message or "damaged" in message
    assert not (tmp_path / "main.tsv").exists() and not (tmp_path / "main.tsv.part").exists()


def test_a_missing_member_is_refused_naming_what_the_archive_has(tmp_path):
    archive = make_zip(tmp_path / "r.zip", {"other.tsv": b"x"})
    assert "lacks main.tsv (has other.tsv)" in refused(archive, {"main.tsv": str(tmp_path / "main.tsv")})


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    (tmp_path / "r.zip").write_text("<html>maintenance</html>")
    assert "not a zip" in refused(str(tmp_path / "r.zip"), {"main.tsv": str(tmp_path / "main.tsv")})
