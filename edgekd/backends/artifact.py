"""The artifact record: a compiled model on disk, what produced it, and the sha256 of its files."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgekd._io import write_json
from edgekd.errors import ArtifactNotFoundError, ConfigError, IntegrityError

ARTIFACT_FILENAME = "artifact.json"
_UNHASHED = (ARTIFACT_FILENAME, ".edgekd-created")  # the record itself and the folder marker


def _hashed(rel: Path) -> bool:
    """Files whose sha256 artifact.json records: all but the record, the marker, reports, temporaries."""
    name = rel.name
    return not (str(rel) in _UNHASHED or (len(rel.parts) == 1 and name.startswith("report."))
                or (name.startswith(".") and name.endswith(".tmp")))


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def folder_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every artifact file under ``folder`` by relative POSIX path, sorted (deterministic)."""
    folder = Path(folder)
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not path.is_symlink() and _hashed(rel):
            out[rel.as_posix()] = file_sha256(path)
    return out


def _contained(folder: Path, rel: str, meta: Path, field_name: str) -> Path:
    """``folder/rel`` for a relative path that stays inside ``folder``, else a ConfigError."""
    if not isinstance(rel, str) or not rel or Path(rel).is_absolute() or ".." in Path(rel).parts:
        raise ConfigError(f"{meta}: field '{field_name}': {rel!r} must be a relative path inside the artifact folder")
    path = folder / rel
    resolved, root = path.resolve(), folder.resolve()
    if root not in resolved.parents:
        raise ConfigError(f"{meta}: field '{field_name}': {rel!r} resolves outside the artifact folder")
    return path


@dataclass
class Artifact:
    """A compiled model on disk and what produced it."""

    path: Path  # the file a runtime loads
    backend: str
    target: str
    precision: str  # e.g. "int8", "fp32", "fp16"
    input_shape: tuple[int, ...]  # (C, H, W) without the batch
    static_batch: int | None = None  # None: any batch size
    files: dict[str, str] = field(default_factory=dict)  # role -> file name in the artifact folder
    details: dict = field(default_factory=dict)  # backend facts: ops, kept-in-float layers, sizes
    sha256: dict[str, str] = field(default_factory=dict)  # relative file path -> sha256, written by save()

    @property
    def folder(self) -> Path:
        return Path(self.path).parent

    @property
    def size_bytes(self) -> int:
        """Bytes of the model: the file, or every file of a model that is a folder (a Core ML .mlpackage)."""
        path = Path(self.path)
        if path.is_dir():  # the folder entry itself is 4096 bytes whatever it holds
            return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
        return path.stat().st_size

    def to_json(self) -> dict:
        data = asdict(self)
        data["path"] = Path(self.path).name
        return data

    def save(self) -> Path:
        """Write artifact.json with the sha256 of every file now in the artifact folder."""
        self.sha256 = folder_hashes(self.folder)
        return write_json(self.folder / ARTIFACT_FILENAME, self.to_json())

    def verify(self) -> None:
        """Raise IntegrityError unless every recorded file, the model included, matches its sha256."""
        folder, meta = self.folder, self.folder / ARTIFACT_FILENAME
        if not self.sha256:
            raise IntegrityError(f"{meta}: records no sha256 of its files, so it cannot be verified; rebuild it, "
                                 "or load with verify=False")
        try:
            model = Path(self.path).resolve().relative_to(folder.resolve()).as_posix()
        except ValueError:
            raise IntegrityError(f"{self.path}: lies outside the artifact folder {folder}; "
                                 "refusing to load it") from None
        if not any(rel == model or rel.startswith(model + "/") for rel in self.sha256):
            raise IntegrityError(f"{self.path}: not among the files artifact.json records; refusing to load it")
        for rel, expected in sorted(self.sha256.items()):
            path = _contained(folder, rel, meta, "sha256")
            if not path.is_file():
                raise IntegrityError(f"{path}: recorded in {meta} but missing")
            if file_sha256(path) != expected:
                raise IntegrityError(f"{path}: sha256 does not match {meta} (tampered or corrupted); "
                                     "refusing to load it")
        extra = sorted(rel for rel in set(folder_hashes(folder)) - set(self.sha256) if rel.startswith(model + "/"))
        if extra:  # a model that is a folder (a Core ML package) must not gain files either
            raise IntegrityError(f"{self.path}: holds files artifact.json does not record: {', '.join(extra[:3])}")

    @classmethod
    def read(cls, path: str | Path) -> "Artifact":
        """Read ``artifact.json`` from an artifact folder, the json itself, or a model file beside it."""
        path = Path(path)
        meta = path if path.name == ARTIFACT_FILENAME else (path / ARTIFACT_FILENAME if path.is_dir()
                                                             else path.parent / ARTIFACT_FILENAME)
        if path.is_dir() and not meta.exists() and (path.parent / ARTIFACT_FILENAME).exists():
            meta = path.parent / ARTIFACT_FILENAME  # a model that is a folder, e.g. a Core ML .mlpackage
        if not path.exists() and not path.is_symlink():
            raise ArtifactNotFoundError(f"{path}: artifact not found")
        if not meta.exists():
            raise ArtifactNotFoundError(f"{path}: artifact not found: no {ARTIFACT_FILENAME} beside it; pass an "
                                        "edgekd artifact folder or file")
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise TypeError("the record is not a JSON object")
            data["path"] = _contained(meta.parent, data["path"], meta, "path")
            for role, rel in (data.get("files") or {}).items():
                _contained(meta.parent, rel, meta, f"files.{role}")
            data["input_shape"] = tuple(int(d) for d in data["input_shape"])
            if not 1 <= len(data["input_shape"]) <= 4 or not all(1 <= d <= 65536 for d in data["input_shape"]):
                raise ValueError(f"input_shape {list(data['input_shape'])} is not 1 to 4 sizes of 1 to 65536")
            batch = data.get("static_batch")
            if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 4096):
                raise ValueError(f"static_batch {batch!r} is not null or 1 to 4096")
            artifact = cls(**data)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, KeyError, TypeError, ValueError,
                AttributeError) as exc:
            raise ConfigError(f"{meta}: not a valid artifact record: {type(exc).__name__}: {exc}") from None
        if (path.is_file() or meta.parent != path) and path.name != ARTIFACT_FILENAME \
                and path.resolve() != Path(artifact.path).resolve():
            artifact.path = path  # the user named another model file of the same folder (e.g. the fp32 one)
            role = next((r for r, rel in artifact.files.items() if (meta.parent / rel).resolve() == path.resolve()
                         and r in ("int8", "fp32")), None)
            artifact.precision = role or artifact.precision
        return artifact
