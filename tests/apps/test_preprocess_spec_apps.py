"""The preprocessing spec as a contract: one JSON Schema; every app reads exactly its keys; the
mobile apps' preprocessing gives the SDK's tensor (Python reference always, Kotlin on a JVM when present)."""

from __future__ import annotations

import ast
import json
import re
import shutil
import struct
import subprocess

import numpy as np
import pytest
from PIL import Image

from apps_helpers import ROOT
from edgekd.data.spec import SCHEMA_FILE, PreprocessSpec, preprocess_json_schema
from mobile_preprocess_ref import to_tensor

KOTLIN = ROOT / "apps" / "android-executorch" / "app" / "src" / "main" / "java" / "org" / "edgekd" / "classify"
SWIFT = ROOT / "apps" / "ios-coreml" / "EdgeKDClassifier"
PYTHON_APPS = [ROOT / "apps" / "edge-server" / "edge_server", ROOT / "apps" / "edge-classify" / "edge_classify"]
SPEC_METHODS = {"from_image", "normalize", "num_classes", "to_json", "save", "load"}


def schema_keys() -> set[str]:
    return set(json.loads(SCHEMA_FILE.read_text())["properties"])


def test_preprocess_schema_file_is_generated_from_the_model():
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema == preprocess_json_schema(), (
        "regenerate: python -c \"import json; from edgekd.data.spec import SCHEMA_FILE, preprocess_json_schema as s; "
        "SCHEMA_FILE.write_text(json.dumps(s(), indent=2) + '\\n')\"")
    aliases = {f.alias or name for name, f in PreprocessSpec.model_fields.items()}
    assert schema_keys() == aliases == {"schema", "input_shape", "layout", "color", "scale", "mean", "std",
                                        "labels", "invert"}
    assert schema["additionalProperties"] is False and set(schema["required"]) == aliases


def test_preprocess_schema_validates_what_builds_write(digits_artifact):
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed")
    schema = json.loads(SCHEMA_FILE.read_text())
    written = json.loads((digits_artifact.artifact_path.parent / "preprocess.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(written)
    for bad in ({**written, "extra": 1}, {**written, "schema": "edgekd.preprocess/2"}, {**written, "std": [0.0]},
                {k: v for k, v in written.items() if k != "invert"}):
        assert not jsonschema.Draft202012Validator(schema).is_valid(bad)


def _mobile_reads(source: str, read_pattern: str, keys_pattern: str) -> tuple[set[str], set[str]]:
    """(keys the parser reads by subscript/getter, keys in its declared key set)."""
    read = set(re.findall(read_pattern, source))
    declared = set(re.findall(r'"([a-z_]+)"', re.search(keys_pattern, source, re.S).group(1)))
    return read, declared


@pytest.mark.parametrize("app, source, read_pattern, keys_pattern", [
    ("kotlin", KOTLIN / "SpecParser.kt", r'json\.get\w*\("([a-z_]+)"\)', r"val KEYS = setOf\((.*?)\)"),
    ("swift", SWIFT / "PreprocessSpec.swift", r'json\["([a-z_]+)"\]', r"static let keys: Set<String> = \[(.*?)\]"),
])
def test_mobile_app_reads_exactly_the_schema_keys(app, source, read_pattern, keys_pattern):
    read, declared = _mobile_reads(source.read_text(), read_pattern, keys_pattern)
    assert read == schema_keys(), f"{app} reads {sorted(read)}"
    assert declared == schema_keys(), f"{app} accepts {sorted(declared)}"
    assert '"edgekd.preprocess/1"' in source.read_text()  # and refuses other schema versions


@pytest.mark.parametrize("package", PYTHON_APPS, ids=lambda p: p.name)
def test_python_app_reads_the_spec_only_through_preprocess_spec(package):
    """Python apps load preprocess.json with PreprocessSpec.load (all keys, extra keys refused) and use
    only the spec's fields; no app parses the JSON by hand."""
    fields = {name for name in PreprocessSpec.model_fields} | SPEC_METHODS
    used, loads = set(), 0
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _is_spec(node.value):
                used.add(node.attr)
            if isinstance(node, ast.Attribute) and node.attr == "load" and getattr(node.value, "id", "") == \
                    "PreprocessSpec":
                loads += 1
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and _is_spec(node.value):
                pytest.fail(f"{path.name}: reads spec key {node.slice.value!r} by hand")
    assert loads == 1, f"{package.name} should load the spec once, with PreprocessSpec.load"
    assert used and used <= fields, f"{package.name} uses {sorted(used - fields)} beyond the spec"


def _is_spec(node) -> bool:
    return ((isinstance(node, ast.Name) and node.id == "spec")
            or (isinstance(node, ast.Attribute) and node.attr == "spec"))


SPECS = [
    PreprocessSpec(input_shape=(1, 8, 8), color="gray", mean=(0.3,), std=(0.37,), labels=tuple("0123456789")),
    PreprocessSpec(input_shape=(1, 28, 28), color="gray", mean=(0.1307,), std=(0.3081,), invert=True, labels=("a",)),
    PreprocessSpec(input_shape=(3, 32, 32), color="rgb", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                   labels=("a", "b")),
    PreprocessSpec(input_shape=(3, 16, 12), color="rgb", scale=1.0, mean=(0.5,), std=(0.5,), invert=True,
                   labels=("a",)),
]
# same size, shrink, grow, mixed; the tall ones pin Pillow 13's pass order (a 3x threshold fails on 40x100)
SIZES = [(8, 8), (40, 30), (5, 3), (100, 7), (13, 57), (40, 100), (60, 100), (64, 200), (320, 240)]


def sample_images(tmp_path) -> list[tuple[str, np.ndarray]]:
    """Sample PNGs (gradients plus noise, RGB and L) written with Pillow, and their straight RGBA pixels."""
    rng = np.random.default_rng(0)
    out = []
    for w, h in SIZES:
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) % 256], -1)
        rgb = np.clip(base + rng.integers(-40, 40, base.shape), 0, 255).astype(np.uint8)
        for mode, arr in (("RGB", rgb), ("L", rgb[..., 1])):
            path = tmp_path / f"sample_{w}x{h}_{mode}.png"
            Image.fromarray(arr, mode).save(path)
            decoded = np.asarray(Image.open(path).convert("RGBA"))  # what a phone's decoder hands the app
            out.append((path, decoded))
    return out


def test_mobile_reference_preprocessing_equals_sdk_from_image(tmp_path):
    images = sample_images(tmp_path)
    for spec in SPECS:
        for path, rgba in images:
            expected = spec.from_image(Image.open(path))
            got = to_tensor(rgba, spec)
            assert got.dtype == np.float32 and got.shape == expected.shape
            assert np.array_equal(got, expected), f"{path.name} with {spec.color} {spec.input_shape}"


def test_kotlin_preprocess_equals_sdk_from_image_on_a_jvm(tmp_path):
    """Compiles the Android app's own Preprocess.kt with kotlinc and runs it on the sample images."""
    if not (shutil.which("kotlinc") and shutil.which("java")):
        pytest.skip("kotlinc/java not installed (apt-get install kotlin): the Kotlin sources were not run here")
    images = sample_images(tmp_path)
    cases = [(spec, path, rgba) for spec in SPECS for path, rgba in images]
    (tmp_path / "cases.bin").write_bytes(_encode_cases(cases))
    harness = tmp_path / "Main.kt"
    harness.write_text((ROOT / "tests" / "apps" / "kotlin_harness.kt.txt").read_text())
    jar = tmp_path / "preprocess.jar"
    sources = [str(KOTLIN / "Preprocess.kt"), str(KOTLIN / "PreprocessSpec.kt"), str(harness)]
    compiled = subprocess.run(["kotlinc", *sources, "-include-runtime", "-d", str(jar)], capture_output=True, text=True,
                              timeout=600)
    assert compiled.returncode == 0, compiled.stderr
    ran = subprocess.run(["java", "-jar", str(jar), str(tmp_path / "cases.bin"), str(tmp_path / "out.bin")],
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    data, offset = (tmp_path / "out.bin").read_bytes(), 0
    for spec, path, _ in cases:
        (n,) = struct.unpack_from(">i", data, offset)
        got = np.frombuffer(data, ">f4", n, offset + 4).astype(np.float32)
        offset += 4 + 4 * n
        assert np.array_equal(got, spec.from_image(Image.open(path)).ravel()), f"{path.name} {spec.input_shape}"


def _encode_cases(cases) -> bytes:
    """Big-endian records for kotlin_harness.kt.txt: the spec's values, then ARGB ints."""
    out = [struct.pack(">i", len(cases))]
    for spec, _, rgba in cases:
        c, h, w = spec.input_shape
        out.append(struct.pack(">iiiidi", c, h, w, int(spec.color == "gray"), spec.scale, int(spec.invert)))
        for values in (spec.mean, spec.std):
            out.append(struct.pack(f">i{len(values)}d", len(values), *values))
        height, width = rgba.shape[:2]
        a, r, g, b = (rgba[..., i].astype(np.uint32) for i in (3, 0, 1, 2))
        argb = ((a << 24) | (r << 16) | (g << 8) | b).astype(">u4")
        out.append(struct.pack(">ii", width, height) + argb.tobytes())
    return b"".join(out)
