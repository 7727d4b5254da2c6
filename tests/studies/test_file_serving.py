import pytest

from studies.file_serving import ByteRange, RangeNotSatisfiable, content_type_for, parse_range

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=100-", ByteRange(100, 999)),
        ("bytes=-10", ByteRange(990, 999)),
        ("bytes=-5000", ByteRange(0, 999)),
        ("bytes=990-5000", ByteRange(990, 999)),
        ("bytes=999-999", ByteRange(999, 999)),
        ("BYTES=0-0", ByteRange(0, 0)),
        ("  bytes=1-2  ", ByteRange(1, 2)),
        ("bytes=0000000000000000000000000001-2", ByteRange(1, 2)),
        ("bytes=0-" + "9" * 5000, ByteRange(0, 999)),
        ("bytes=-" + "9" * 5000, ByteRange(0, 999)),
    ],
)
def test_parse_range_single(header, expected):
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes=",
        "bytes=-",
        "bytes=5-2",
        "bytes=a-b",
        "bytes=1.5-2",
        "bytes=+1-2",
        "bytes=0-1,5-6",
        "bytes=0-1, 5-6",
        "bytes=0-1,",
        "items=0-1",
        "bytes 0-1",
        "bytes=0x10-20",
        "bytes=١-٢",
    ],
)
def test_parse_range_ignored(header):
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("bytes=1000-", SIZE),
        ("bytes=1000-2000", SIZE),
        ("bytes=" + "9" * 5000 + "-", SIZE),
        ("bytes=-0", SIZE),
        ("bytes=0-", 0),
        ("bytes=-1", 0),
    ],
)
def test_parse_range_unsatisfiable(header, size):
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("scan.nii.gz", "application/gzip"),
        ("scan.nii", "application/octet-stream"),
        ("scan.json.gz", "application/gzip"),
        ("scan.nii.bz2", "application/octet-stream"),
        ("montage.png", "image/png"),
        ("scan.json", "application/json"),
    ],
)
def test_content_type_for(tmp_path, name, expected):
    assert content_type_for(tmp_path / name) == expected
