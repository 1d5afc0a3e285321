"""The preprocessing spec: the one JSON document every build writes beside its artifact.

Apps (server, CLI, iOS, Android) read exactly these keys to turn an image into the
model's input tensor, so the schema is versioned and validated here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edgekd._io import write_json
from edgekd.errors import ConfigError

SPEC_SCHEMA = "edgekd.preprocess/1"
SPEC_FILENAME = "preprocess.json"


class PreprocessSpec(BaseModel):
    """How raw pixels become the model input: ``x = (pixel * scale - mean) / std``, NCHW float32."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_: str = Field(SPEC_SCHEMA, alias="schema")
    input_shape: tuple[int, int, int]  # C, H, W
    layout: str = "NCHW"
    color: str = "gray"  # gray | rgb
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    labels: tuple[str, ...]
    invert: bool = False  # True when the data has light strokes on a dark background

    @model_validator(mode="after")
    def _check(self) -> "PreprocessSpec":
        channels = self.input_shape[0]
        if self.schema_ != SPEC_SCHEMA:
            raise ValueError(f"schema must be {SPEC_SCHEMA!r}, got {self.schema_!r}")
        if self.layout != "NCHW":
            raise ValueError("layout must be 'NCHW'")
        if self.color not in ("gray", "rgb"):
            raise ValueError("color must be 'gray' or 'rgb'")
        if (self.color == "gray") != (channels == 1):
            raise ValueError(f"color {self.color!r} does not match {channels} input channels")
        for name in ("mean", "std"):
            if len(getattr(self, name)) not in (1, channels):
                raise ValueError(f"{name} needs 1 or {channels} values")
        if any(s <= 0 for s in self.std):
            raise ValueError("std values must be > 0")
        return self

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def to_json(self) -> dict:
        return self.model_dump(by_alias=True, mode="json")

    def save(self, path: str | Path) -> Path:
        return write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "PreprocessSpec":
        path = Path(path)
        try:
            return cls.model_validate(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError, ValidationError) as exc:
            raise ConfigError(f"{path}: not a valid preprocessing spec: {exc}") from exc

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """uint8-range pixels, shape (N, C, H, W) or (C, H, W) → normalized float32."""
        x = pixels.astype(np.float32) * np.float32(self.scale)
        if self.invert:
            x = np.float32(255.0 * self.scale) - x
        shape = (-1, 1, 1)
        mean = np.asarray(self.mean, np.float32).reshape(shape)
        std = np.asarray(self.std, np.float32).reshape(shape)
        return ((x - mean) / std).astype(np.float32)

    def from_image(self, image) -> np.ndarray:
        """A Pillow image → one normalized (1, C, H, W) tensor, as every app does it."""
        # heavy optional package: imported on first use
        from PIL import Image

        c, h, w = self.input_shape
        mode = "L" if self.color == "gray" else "RGB"
        image = image.convert(mode).resize((w, h), Image.Resampling.BILINEAR)
        arr = np.asarray(image, dtype=np.uint8)
        arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
        return self.normalize(arr)[None]


def identity_spec(input_shape, num_classes: int, labels=None) -> PreprocessSpec:
    """Spec for user arrays that are already normalized: inputs pass through unchanged."""
    channels = int(input_shape[0])
    return PreprocessSpec(
        input_shape=tuple(int(d) for d in input_shape),
        color="gray" if channels == 1 else "rgb",
        scale=1.0,  # mean 0, std 1, scale 1: apps pass the user's values through as they are
        labels=tuple(labels or (str(i) for i in range(num_classes))),
    )


SCHEMA_FILE = Path(__file__).with_name("preprocess.schema.json")


def preprocess_json_schema() -> dict:
    """The JSON Schema of preprocess.json, generated from :class:`PreprocessSpec`.

    Every key is required (builds always write all of them) and the validator's rules that
    JSON Schema can say simply (schema version, layout, color, std > 0) are added; the
    cross-key rules (color vs channels, 1 or C mean/std values) stay in the validator. Apps on
    other platforms read exactly these keys. ``edgekd/data/preprocess.schema.json`` is this, saved.
    """
    schema = PreprocessSpec.model_json_schema(by_alias=True, mode="serialization")
    props = schema["properties"]
    props["schema"]["const"] = SPEC_SCHEMA
    props["layout"]["enum"] = ["NCHW"]
    props["color"]["enum"] = ["gray", "rgb"]
    for name in ("mean", "std"):
        props[name]["minItems"] = 1  # 1 value for all channels, or one per channel
    props["std"]["items"]["exclusiveMinimum"] = 0
    schema["required"] = list(props)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SPEC_SCHEMA, **schema}
