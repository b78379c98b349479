"""The generator's settings: one validated pydantic model, loadable from YAML.

Units: world coordinates in metres, z up, ground plane at z = 0; time in
seconds at ``fps`` frames per second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trajkit.cli import describe_validation_error
from trajkit.yamlfile import read_yaml_mapping

CLASS_NAMES = ("Linear", "Circular", "Helical", "Parabolic")


class Range(BaseModel):
    """A closed interval ``[lo, hi]`` from which a parameter is drawn uniformly."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    lo: float
    hi: float

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.lo > self.hi:
            raise ValueError(f"lo ({self.lo}) must not exceed hi ({self.hi})")
        return self


def _r(lo: float, hi: float) -> Any:
    return Field(default_factory=lambda: Range(lo=lo, hi=hi))


class SceneConfig(BaseModel):
    """The box the ball stays in (every position, observed and future)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    x: Range = _r(-2.5, 2.5)
    y: Range = _r(-2.5, 2.5)
    z: Range = _r(0.35, 3.0)

    @property
    def extent(self) -> float:
        """Diagonal of the box: the scale future-position errors are reported against."""
        return float(
            (
                (self.x.hi - self.x.lo) ** 2
                + (self.y.hi - self.y.lo) ** 2
                + (self.z.hi - self.z.lo) ** 2
            )
            ** 0.5
        )


class CameraRigConfig(BaseModel):
    """Pinhole cameras on a ring around ``look_at``, one (azimuth, elevation) pair each."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    azimuths_deg: list[float] = Field(default_factory=lambda: [20.0, 110.0, 200.0, 290.0])
    elevations_deg: list[float] = Field(default_factory=lambda: [12.0, 25.0, 40.0, 60.0])
    distance: float = Field(7.5, gt=1.0)
    look_at: tuple[float, float, float] = (0.0, 0.0, 1.2)
    fov_deg: float = Field(55.0, gt=5.0, lt=170.0)

    @model_validator(mode="after")
    def _paired(self) -> CameraRigConfig:
        if len(self.azimuths_deg) != len(self.elevations_deg) or not self.azimuths_deg:
            raise ValueError(
                "azimuths_deg and elevations_deg need one entry per camera (at least one)"
            )
        if any(not 0.0 < e < 90.0 for e in self.elevations_deg):
            raise ValueError(
                "elevations_deg must lie strictly between 0 and 90 (cameras above the ground)"
            )
        return self


class LinearConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    speed: Range = _r(1.8, 3.2)  # m/s: 2 to 4 m travelled over the clip
    max_vertical_fraction: float = Field(0.35, ge=0.0, le=1.0)


class CircularConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    radius: Range = _r(0.8, 1.5)
    swept_turns: Range = _r(0.55, 0.9)  # turns over the observed frames: at least half a turn


class HelicalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    radius: Range = _r(0.6, 1.1)
    swept_turns: Range = _r(0.8, 1.5)
    drift: Range = _r(1.2, 2.0)  # metres along the axis over the observed frames


class ParabolicConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    start_height: Range = _r(0.5, 1.4)
    apex_fraction: Range = _r(0.3, 0.7)  # where in the observed window the apex falls
    horizontal_speed: Range = _r(0.8, 2.2)
    gravity: float = Field(9.81, gt=0.0)


class AppearanceConfig(BaseModel):
    """Per-sample variation of look; none of it changes the labels."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    ball_radius: Range = _r(0.22, 0.34)
    checker_size: Range = _r(0.4, 0.9)
    noise_std: float = Field(2.0, ge=0.0, le=50.0)  # sensor noise, in 0..255 units


class DistractorConfig(BaseModel):
    """Other balls on their own paths (any of the motion families), drawn over the scene.

    The target keeps the label; its cue is its colour: with distractors on, the target
    is always drawn in ``target_hue`` (saturated, bright) and every distractor's hue is at
    least ``min_hue_gap`` (a fraction of the colour wheel) away from it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    count: int = Field(2, ge=1, le=8)
    radius: Range = _r(0.12, 0.42)
    target_hue: float = Field(0.0, ge=0.0, lt=1.0)  # 0 = red
    min_hue_gap: float = Field(0.15, ge=0.0, le=0.45)


class OccluderConfig(BaseModel):
    """Static boxes standing on the ground (pillars), each turned about the vertical.

    They are placed clear of the target's path by ``clearance`` metres (at least the
    largest ball radius), so the ball passes behind them, never through them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    count: int = Field(2, ge=1, le=8)
    width: Range = _r(0.35, 0.8)  # metres, each side of the footprint
    height: Range = _r(1.2, 2.8)
    clearance: float = Field(0.45, ge=0.0)


class LightingConfig(BaseModel):
    """Brightness and colour that drift over the clip: a gain per channel, linear in time.

    Each channel's gain goes from ``1 - a`` to ``1 + a`` (or back), where ``a`` is a
    shared brightness term plus a per-channel colour term, each drawn within ``drift``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    drift: float = Field(0.25, gt=0.0, le=0.8)


class GroundTruthConfig(BaseModel):
    """Per-frame ground truth in each label: the ball's pixel position, depth, visibility."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    masks: bool = False  # also its visible pixels, run-length encoded


# Options added after format version 1's datasets were made: left out of the config's dump
# while unset, so an existing dataset's metadata and fingerprint stay byte-identical.
OPTIONAL_SECTIONS = ("distractors", "occluders", "lighting", "ground_truth")


class GeneratorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    frames: int = Field(32, ge=2, le=512)
    horizon: int = Field(5, ge=1, le=512)
    image_size: int = Field(64, ge=16, le=1024)
    fps: float = Field(30.0, gt=0.0)
    scene: SceneConfig = Field(default_factory=SceneConfig)
    cameras: CameraRigConfig = Field(default_factory=CameraRigConfig)
    linear: LinearConfig = Field(default_factory=LinearConfig)
    circular: CircularConfig = Field(default_factory=CircularConfig)
    helical: HelicalConfig = Field(default_factory=HelicalConfig)
    parabolic: ParabolicConfig = Field(default_factory=ParabolicConfig)
    appearance: AppearanceConfig = Field(default_factory=AppearanceConfig)
    distractors: DistractorConfig | None = None
    occluders: OccluderConfig | None = None
    lighting: LightingConfig | None = None
    ground_truth: GroundTruthConfig | None = None

    @pydantic.model_serializer(mode="wrap")
    def _omit_unset_options(self, handler: Any) -> dict:
        """The dump without the optional sections that are off (see ``OPTIONAL_SECTIONS``)."""
        data = handler(self)
        for key in OPTIONAL_SECTIONS:
            if data.get(key) is None:
                data.pop(key, None)
        return data

    @property
    def num_cameras(self) -> int:
        return len(self.cameras.azimuths_deg)

    @property
    def video_shape(self) -> tuple[int, int, int, int, int]:
        return (self.num_cameras, self.frames, 3, self.image_size, self.image_size)


class ConfigError(ValueError):
    """A config file that cannot be read or does not validate; the message is one line."""


def load_config(path: str | Path | None) -> GeneratorConfig:
    if path is None:
        return GeneratorConfig()
    raw = read_yaml_mapping(path, ConfigError)
    try:
        return GeneratorConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"config {path}: {describe_validation_error(e)}") from None
