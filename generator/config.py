"""The generator's settings: one validated pydantic model, loadable from YAML.

Units: world coordinates in metres, z up, ground plane at z = 0; time in
seconds at ``fps`` frames per second.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import pydantic
import pydantic_core
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from trajkit.cli import describe_validation_error
from trajkit.counts import Count
from trajkit.presets import config_file
from trajkit.real import Real
from trajkit.yamlfile import read_settings

if TYPE_CHECKING:
    from generator.render.cameras import Camera

CLASS_NAMES = ("Linear", "Circular", "Helical", "Parabolic")
# Opt-in motion classes (``classes:``), each with its own section; a config that does not
# list them draws the four above, as before.
EXTRA_CLASS_NAMES = ("Bouncing", "Damped", "Switching")
KNOWN_CLASS_NAMES = CLASS_NAMES + EXTRA_CLASS_NAMES
# A clip's bounds, which a dataset's metadata.json is held to as well.
MIN_FRAMES, MAX_FRAMES = 2, 512
MAX_HORIZON = 512
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 1024

# Every section: unknown keys refused, and no NaN or infinity (each one crashed a worker, or
# drew a clip of nothing, instead of being named here).
STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Range(BaseModel):
    """A closed interval ``[lo, hi]`` from which a parameter is drawn uniformly."""

    model_config = STRICT
    lo: Real
    hi: Real

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.lo > self.hi:
            raise ValueError(f"lo ({self.lo}) must not exceed hi ({self.hi})")
        return self


def _above_zero(r: Range) -> Range:
    if r.lo <= 0:
        raise ValueError(f"must be above 0 (a size), got lo {r.lo}")
    return r


def _not_negative(r: Range) -> Range:
    if r.lo < 0:
        raise ValueError(f"must not be negative (a magnitude), got lo {r.lo}")
    return r


def _fraction(r: Range) -> Range:
    if r.lo < 0 or r.hi > 1:
        raise ValueError(f"must lie within 0..1 (a fraction), got {r.lo}..{r.hi}")
    return r


SizeRange = Annotated[Range, AfterValidator(_above_zero)]
MagnitudeRange = Annotated[Range, AfterValidator(_not_negative)]
FractionRange = Annotated[Range, AfterValidator(_fraction)]


def _r(lo: float, hi: float) -> Any:
    return Field(default_factory=lambda: Range(lo=lo, hi=hi))


class SceneConfig(BaseModel):
    """The box the ball stays in (every position, observed and future)."""

    model_config = STRICT
    x: Range = _r(-2.5, 2.5)
    y: Range = _r(-2.5, 2.5)
    z: Range = _r(0.35, 3.0)

    @pydantic.field_validator("z")
    @classmethod
    def _above_ground(cls, z: Range) -> Range:
        if z.lo < 0:
            raise ValueError(f"the box must stand on the ground (lo >= 0), got lo {z.lo}")
        return z

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

    model_config = STRICT
    azimuths_deg: list[Real] = Field(default_factory=lambda: [20.0, 110.0, 200.0, 290.0])
    elevations_deg: list[Real] = Field(default_factory=lambda: [12.0, 25.0, 40.0, 60.0])
    distance: Real = Field(7.5, gt=1.0)
    look_at: tuple[Real, Real, Real] = (0.0, 0.0, 1.2)
    fov_deg: Real = Field(55.0, gt=5.0, lt=170.0)

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
    model_config = STRICT
    speed: MagnitudeRange = _r(1.8, 3.2)  # m/s: 2 to 4 m travelled over the clip
    max_vertical_fraction: Real = Field(0.35, ge=0.0, le=1.0)


class CircularConfig(BaseModel):
    model_config = STRICT
    radius: SizeRange = _r(0.8, 1.5)
    swept_turns: MagnitudeRange = _r(
        0.55, 0.9
    )  # turns over the observed frames: at least half a turn


class HelicalConfig(BaseModel):
    model_config = STRICT
    radius: SizeRange = _r(0.6, 1.1)
    swept_turns: MagnitudeRange = _r(0.8, 1.5)
    drift: MagnitudeRange = _r(1.2, 2.0)  # metres along the axis over the observed frames


class ParabolicConfig(BaseModel):
    model_config = STRICT
    start_height: Range = _r(0.5, 1.4)
    apex_fraction: FractionRange = _r(0.3, 0.7)  # where in the observed window the apex falls
    horizontal_speed: MagnitudeRange = _r(0.8, 2.2)
    gravity: Real = Field(9.81, gt=0.0)


# The first bounce comes after at least this share of the observed window: the ball is
# seen in flight before it (and the throw that lands there at once has no finite speed).
MIN_BOUNCE_FRACTION = 0.05


class BouncingConfig(BaseModel):
    """A ball thrown from ``start_height`` above the floor that bounces off it.

    The floor is where the ball's centre may go lowest, ``scene.z.lo`` (the default
    box's 0.35 m is just above the largest ball's radius, so the ball touches the ground).
    The first bounce falls at ``first_bounce_fraction`` of the observed window; each
    bounce keeps ``restitution`` of the vertical speed.
    """

    model_config = STRICT
    start_height: MagnitudeRange = _r(0.5, 1.5)  # metres above the floor
    first_bounce_fraction: FractionRange = _r(0.25, 0.6)
    horizontal_speed: MagnitudeRange = _r(0.8, 2.2)
    restitution: FractionRange = _r(0.55, 0.85)
    gravity: Real = Field(9.81, gt=0.0)

    @pydantic.field_validator("first_bounce_fraction")
    @classmethod
    def _a_flight_first(cls, r: Range) -> Range:
        if r.lo < MIN_BOUNCE_FRACTION:
            raise ValueError(
                f"must be at least {MIN_BOUNCE_FRACTION} (a flight before the first bounce), "
                f"got lo {r.lo}"
            )
        return r


class DampedConfig(BaseModel):
    """Damped oscillation along a random direction about a point:
    ``c + d A exp(-damping t) cos(2 pi f t + phase)``."""

    model_config = STRICT
    amplitude: SizeRange = _r(0.8, 1.5)  # metres: the envelope at the first frame
    swept_cycles: MagnitudeRange = _r(0.4, 1.0)  # oscillations over the observed frames
    damping: MagnitudeRange = _r(0.3, 1.5)  # 1/s: the amplitude falls by exp(-damping t)


class SwitchingConfig(BaseModel):
    """A path that changes law at a random frame: a straight line, then a circular arc
    tangent to it (or the arc first, then the tangent line), at one speed throughout."""

    model_config = STRICT
    speed: MagnitudeRange = _r(1.5, 2.8)  # m/s, on both pieces
    radius: SizeRange = _r(0.6, 1.2)  # of the arc
    max_vertical_fraction: Real = Field(0.35, ge=0.0, le=1.0)  # of the line's direction
    switch_fraction: FractionRange = _r(0.3, 0.7)  # where in the observed frames it switches


class AppearanceConfig(BaseModel):
    """Per-sample variation of look; none of it changes the labels."""

    model_config = STRICT
    ball_radius: SizeRange = _r(0.22, 0.34)
    checker_size: SizeRange = _r(0.4, 0.9)
    noise_std: Real = Field(2.0, ge=0.0, le=50.0)  # sensor noise, in 0..255 units


class DistractorConfig(BaseModel):
    """Other balls on their own paths (any of the motion families), drawn over the scene.

    The target keeps the label; its cue is its colour: with distractors on, the target
    is always drawn in ``target_hue`` (saturated, bright) and every distractor's hue is at
    least ``min_hue_gap`` (a fraction of the colour wheel) away from it.
    """

    model_config = STRICT
    count: Count = Field(2, ge=1, le=8)
    radius: SizeRange = _r(0.12, 0.42)
    target_hue: Real = Field(0.0, ge=0.0, lt=1.0)  # 0 = red
    min_hue_gap: Real = Field(0.15, ge=0.0, le=0.45)


class OccluderConfig(BaseModel):
    """Static boxes standing on the ground (pillars), each turned about the vertical.

    They are placed clear of the target's path by ``clearance`` metres (at least the
    largest ball radius), so the ball passes behind them, never through them.
    """

    model_config = STRICT
    count: Count = Field(2, ge=1, le=8)
    width: SizeRange = _r(0.35, 0.8)  # metres, each side of the footprint
    height: SizeRange = _r(1.2, 2.8)
    clearance: Real = Field(0.45, ge=0.0)


class LightingConfig(BaseModel):
    """Brightness and colour that drift over the clip: a gain per channel, linear in time.

    Each channel's gain goes from ``1 - a`` to ``1 + a`` (or back), where ``a`` is a
    shared brightness term plus a per-channel colour term, each drawn within ``drift``.
    """

    model_config = STRICT
    drift: Real = Field(0.25, gt=0.0, le=0.8)


class GroundTruthConfig(BaseModel):
    """Per-frame ground truth in each label: the ball's pixel position, depth, visibility."""

    model_config = STRICT
    enabled: bool = True
    masks: bool = False  # also its visible pixels, run-length encoded

    @pydantic.field_validator("masks")
    @classmethod
    def _part_of_ground_truth(cls, masks: bool, info: pydantic.ValidationInfo) -> bool:
        if masks and info.data.get("enabled") is False and _to_draw(info):
            raise ValueError("needs ground truth on (enabled: true), or leave masks out")
        return masks


class MotionBlurConfig(BaseModel):
    """Each frame averages the ball (and distractors) drawn at ``samples`` instants.

    The instants are spread evenly over ``shutter`` (a fraction of the frame interval),
    centred on the frame's time, so the blur's centre stays where the label says.
    """

    model_config = STRICT
    samples: Count = Field(5, ge=2, le=32)
    shutter: Real = Field(0.5, gt=0.0, le=1.0)


class CameraMotionConfig(BaseModel):
    """Per-sample, per-frame camera poses: shake (``jitter_*``) and a slow orbit about ``look_at``.

    Every frame each camera is turned by up to ``jitter_deg`` about each of its axes and
    moved by up to ``jitter_m`` along each world axis (uniform, independent per frame);
    the whole rig orbits ``orbit_deg`` about the vertical through ``look_at`` over the
    clip (clockwise or not at random), at its nominal pose mid-clip.
    """

    model_config = STRICT
    jitter_deg: Real = Field(0.0, ge=0.0, le=5.0)
    jitter_m: Real = Field(0.0, ge=0.0, le=0.5)
    orbit_deg: Real = Field(0.0, ge=0.0, le=180.0)

    @model_validator(mode="after")
    def _moves(self) -> CameraMotionConfig:
        if not (self.jitter_deg or self.jitter_m or self.orbit_deg):
            raise ValueError("jitter_deg, jitter_m or orbit_deg must be above 0 (or leave it out)")
        return self


# Options added after format version 1's datasets were made: left out of the config's dump
# while unset, so an existing dataset's metadata and fingerprint stay byte-identical.
OPTIONAL_SECTIONS = (
    "distractors",
    "occluders",
    "lighting",
    "ground_truth",
    "motion_blur",
    "camera_motion",
)
# The class set and the opt-in classes' sections: likewise left out while unset.
MOTION_SECTIONS = ("classes", "bouncing", "damped", "switching")


class GeneratorConfig(BaseModel):
    model_config = STRICT
    frames: Count = Field(32, ge=MIN_FRAMES, le=MAX_FRAMES)
    horizon: Count = Field(5, ge=1, le=MAX_HORIZON)
    image_size: Count = Field(64, ge=MIN_IMAGE_SIZE, le=MAX_IMAGE_SIZE)
    fps: Real = Field(30.0, gt=0.0)
    scene: SceneConfig = Field(default_factory=SceneConfig)
    cameras: CameraRigConfig = Field(default_factory=CameraRigConfig)
    linear: LinearConfig = Field(default_factory=LinearConfig)
    circular: CircularConfig = Field(default_factory=CircularConfig)
    helical: HelicalConfig = Field(default_factory=HelicalConfig)
    parabolic: ParabolicConfig = Field(default_factory=ParabolicConfig)
    classes: list[Literal[KNOWN_CLASS_NAMES]] | None = None  # None: CLASS_NAMES
    bouncing: BouncingConfig | None = None
    damped: DampedConfig | None = None
    switching: SwitchingConfig | None = None
    appearance: AppearanceConfig = Field(default_factory=AppearanceConfig)
    distractors: DistractorConfig | None = None
    occluders: OccluderConfig | None = None
    lighting: LightingConfig | None = None
    ground_truth: GroundTruthConfig | None = None
    motion_blur: MotionBlurConfig | None = None
    camera_motion: CameraMotionConfig | None = None

    @pydantic.model_serializer(mode="wrap")
    def _omit_unset_options(self, handler: Any) -> dict:
        """The dump without the optional sections that are off (see ``OPTIONAL_SECTIONS``)."""
        data = handler(self)
        for key in OPTIONAL_SECTIONS + MOTION_SECTIONS:
            if data.get(key) is None:
                data.pop(key, None)
        return data

    @model_validator(mode="before")
    @classmethod
    def _motion_sections(cls, data: Any) -> Any:
        """The default class list is no list (the same dump); a listed opt-in class without
        its section gets the section's defaults (so the dump records the ranges drawn)."""
        if not isinstance(data, dict) or not isinstance(data.get("classes"), list | tuple):
            return data
        if list(data["classes"]) == list(CLASS_NAMES):
            return {**data, "classes": None}
        extra = {
            name.lower(): {}
            for name in EXTRA_CLASS_NAMES
            if name in data["classes"] and data.get(name.lower()) is None
        }
        return {**data, **extra} if extra else data

    @model_validator(mode="after")
    def _class_set(self) -> GeneratorConfig:
        """At least two distinct classes, and no section for a class that is not drawn."""
        issues = []
        if self.classes is not None:
            twice = sorted({c for c in self.classes if self.classes.count(c) > 1})
            if twice:
                issues.append((("classes",), f"{', '.join(twice)} listed more than once"))
            elif len(self.classes) < 2:
                issues.append((("classes",), "list at least two classes"))
        for name in EXTRA_CLASS_NAMES:
            if getattr(self, name.lower()) is not None and name not in self.class_names:
                issues.append(
                    ((name.lower(),), f"set, but {name} is not in classes: add it or drop this")
                )
        if issues:
            raise pydantic_core.ValidationError.from_exception_data(
                "GeneratorConfig",
                [
                    {"type": pydantic_core.PydanticCustomError("classes", msg), "loc": loc}
                    for loc, msg in issues
                ],
            )
        return self

    @model_validator(mode="after")
    def _renderable(self, info: pydantic.ValidationInfo) -> GeneratorConfig:
        """Refuse, naming the field, what would crash a worker or draw nothing to see (a
        config to draw from, not one a dataset stores: ``stored_config``)."""
        issues = _render_issues(self) if _to_draw(info) else []
        if issues:
            raise pydantic_core.ValidationError.from_exception_data(
                "GeneratorConfig",
                [
                    {"type": pydantic_core.PydanticCustomError("unrenderable", msg), "loc": loc}
                    for loc, msg in issues
                ],
            )
        return self

    @property
    def class_names(self) -> tuple[str, ...]:
        """The classes drawn, in label order: ``class_label`` indexes this."""
        return CLASS_NAMES if self.classes is None else tuple(self.classes)

    @property
    def num_cameras(self) -> int:
        return len(self.cameras.azimuths_deg)

    @property
    def video_shape(self) -> tuple[int, int, int, int, int]:
        return (self.num_cameras, self.frames, 3, self.image_size, self.image_size)


# A path family must fit the scene box in at least this many of ``MAX_TRIES`` probe draws
# (1%; a sample then runs out of draws with odds under 1 in 20,000): rarer fits made workers
# fail mid-run. The hard level's flights fit in 1.4% of draws.
PROBE_FITS = 10
PROBE_SEED = 0x9E0B  # the probes draw from fixed streams: the same verdict each time
# Below these, a dataset was drawn without a word with nothing to learn from: the smallest
# ball's width (at the box corner farthest from a camera) and a family's slowest movement over
# the observed frames (the median of the probe's paths drawn again at the low end of the
# family's ``PACE`` ranges, each in the camera it moves most in), in pixels. The shipped
# levels' balls are 2.5 px and their slowed paths move 4.9 px or more; the smallest config the
# tests use (16 px, 4 frames, one camera) has 0.63 px and its slowed flights move 0.12 px.
MIN_BALL_PX = 0.5
MIN_TRAVEL_PX = 0.1
# The ranges of each family's section whose low end draws its slowest paths, the other draws
# alike. The median of ten random paths let ``speed: {lo: 0, hi: 1}`` by (5.5 px), of whose
# paths 1.4% move under 0.1 px (of 5,000), which ten rarely hold; slowed to lo, all do.
PACE = {
    "Linear": ("speed",),
    "Circular": ("radius", "swept_turns"),
    "Helical": ("radius", "swept_turns", "drift"),
    "Parabolic": ("horizontal_speed",),
    "Bouncing": ("horizontal_speed",),
    "Damped": ("amplitude", "swept_cycles"),
    "Switching": ("speed", "radius"),
}
assert set(PACE) == set(KNOWN_CLASS_NAMES)


def _render_issues(cfg: GeneratorConfig) -> list[tuple[tuple[str, ...], str]]:
    """Each field that makes the config unrenderable, with why: geometry first, then paths."""
    issues: list[tuple[tuple[str, ...], str]] = []
    scene = cfg.scene
    lo = np.array([scene.x.lo, scene.y.lo, scene.z.lo])
    hi = np.array([scene.x.hi, scene.y.hi, scene.z.hi])
    sides = hi - lo
    objects = [(("appearance", "ball_radius"), "the ball", cfg.appearance.ball_radius.hi)]
    if cfg.distractors is not None:
        objects.append((("distractors", "radius"), "a distractor", cfg.distractors.radius.hi))
    for loc, what, radius in objects:
        if 2 * radius > sides.min():
            issues.append(
                (loc, f"{what} ({2 * radius:g} m across) is larger than the scene box's "
                 f"smallest side ({sides.min():g} m)")
            )  # fmt: skip
    if cfg.occluders is not None and cfg.occluders.width.hi > sides[:2].min():
        issues.append(
            (("occluders", "width"), f"a pillar ({cfg.occluders.width.hi:g} m wide) is larger "
             f"than the scene box's floor ({sides[0]:g} x {sides[1]:g} m)")
        )  # fmt: skip

    from generator.render.renderer import NOISE_BANK_SIZE  # here: the renderer imports this module

    values = cfg.num_cameras * cfg.frames * 3 * cfg.image_size**2
    if values > NOISE_BANK_SIZE:
        issues.append(
            (("image_size",), f"a clip of {cfg.num_cameras} cameras x {cfg.frames} frames x 3 x "
             f"{cfg.image_size}^2 pixels is {values} values, over the renderer's "
             f"{NOISE_BANK_SIZE}: lower image_size, frames or the number of cameras")
        )  # fmt: skip
    issues += _camera_issues(cfg, lo, hi, max(r for _, _, r in objects))
    if cfg.camera_motion is not None and cfg.camera_motion.orbit_deg and not issues:
        issues += _orbit_issues(cfg, lo, hi, max(r for _, _, r in objects))
    if not issues:  # paths are only worth drawing in a sane scene
        key = cfg.model_dump_json()
        if key not in _PATH_VERDICTS:
            if len(_PATH_VERDICTS) >= 64:
                _PATH_VERDICTS.clear()
            _PATH_VERDICTS[key] = _path_issues(cfg)
        issues += _PATH_VERDICTS[key]
    return issues


def _camera_issues(
    cfg: GeneratorConfig, lo: np.ndarray, hi: np.ndarray, margin: float
) -> list[tuple[tuple[str, ...], str]]:
    """Cameras under the ground, inside the scene box (or within a ball of it), not seeing it,
    or too far to show the ball."""
    from generator.render.cameras import build_rig

    refusals = []
    box_centre = (lo + hi) / 2
    rig = build_rig(cfg)
    for i, cam in enumerate(rig):
        centre = cam.centre
        with np.errstate(all="ignore"):  # a camera level with the centre divides by 0
            (u, v), depth = cam.project(box_centre)
        inside = cfg.image_size - 0.5
        if centre[2] <= 0:
            msg = f"{_camera_name(cfg, i)} is under the ground (z {centre[2]:.3g} m): raise look_at"
        elif ((centre > lo - margin) & (centre < hi + margin)).all():
            msg = f"{_camera_name(cfg, i)} is inside the scene box: raise distance"
        elif not (depth > 0 and -0.5 <= u <= inside and -0.5 <= v <= inside):
            msg = (
                f"{_camera_name(cfg, i)} does not see the scene box's centre: "
                "point look_at at the box"
            )
        else:
            continue
        refusals.append((("cameras",), msg))
    return refusals or _ball_too_small(cfg, rig, lo, hi)


def _camera_name(cfg: GeneratorConfig, i: int) -> str:
    return (
        f"camera {i} (azimuth {cfg.cameras.azimuths_deg[i]:g}, "
        f"elevation {cfg.cameras.elevations_deg[i]:g})"
    )


def _ball_too_small(
    cfg: GeneratorConfig, rig: list[Camera], lo: np.ndarray, hi: np.ndarray
) -> list[tuple[tuple[str, ...], str]]:
    """The smallest ball under half a pixel wide at the box corner deepest in a camera's view
    (sized as the renderer sizes it, focal length x radius / depth): clips it barely shows in."""
    corners = np.array(
        [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    )
    radius = cfg.appearance.ball_radius.lo
    widths = [2 * cam.K[0, 0] * radius / cam.to_camera(corners)[:, 2].max() for cam in rig]
    i = int(np.argmin(widths))
    if widths[i] >= MIN_BALL_PX:
        return []
    return [
        (("cameras", "distance"), f"{_camera_name(cfg, i)} sees the smallest ball ({radius:g} m "
         f"radius) {widths[i]:.2g} px wide at the scene box's farthest corner (at least "
         f"{MIN_BALL_PX} must): lower distance or fov_deg, or raise image_size or "
         "appearance.ball_radius")
    ]  # fmt: skip


def _orbit_issues(
    cfg: GeneratorConfig, lo: np.ndarray, hi: np.ndarray, margin: float
) -> list[tuple[tuple[str, ...], str]]:
    """The rig at both ends of its orbit must pass the same checks as at its nominal pose."""
    assert cfg.camera_motion is not None
    half = cfg.camera_motion.orbit_deg / 2
    for sign in (-1.0, 1.0):
        azimuths = [a + sign * half for a in cfg.cameras.azimuths_deg]
        turned = cfg.model_copy(
            update={"cameras": cfg.cameras.model_copy(update={"azimuths_deg": azimuths})}
        )
        for _, msg in _camera_issues(turned, lo, hi, margin):
            return [
                (("camera_motion", "orbit_deg"), f"at {sign * half:+g} degrees of orbit, {msg}")
            ]
    return []


# Each config's path verdict (about 10 ms of draws), by its dump: configs are built often.
_PATH_VERDICTS: dict[str, list[tuple[tuple[str, ...], str]]] = {}


def _path_issues(cfg: GeneratorConfig) -> list[tuple[tuple[str, ...], str]]:
    """Families whose paths rarely fit the scene box (a worker would give up on one) or whose
    slowest barely move in every camera; then pillars with little room beside the paths."""
    from generator.render.cameras import build_rig
    from generator.render.trajectories import MAX_TRIES, SAMPLERS

    scene = cfg.scene
    lo = np.array([scene.x.lo, scene.y.lo, scene.z.lo])
    hi = np.array([scene.x.hi, scene.y.hi, scene.z.hi])
    rig = build_rig(cfg)
    refusals = []
    firsts = []  # each family's first path that fits: where the pillars' probe puts them
    t = np.arange(cfg.frames + cfg.horizon) / cfg.fps
    for name in cfg.class_names:
        class_id = KNOWN_CLASS_NAMES.index(name)
        sampler = SAMPLERS[class_id]
        rng = np.random.default_rng([PROBE_SEED, class_id])
        fitted, starts = [], []  # the paths that fit, and the stream's state before each
        try:
            with np.errstate(all="ignore"):
                for _ in range(MAX_TRIES):
                    start = rng.bit_generator.state
                    pos, _ = sampler(rng, t, cfg)
                    if (pos.min(axis=0) >= lo).all() and (pos.max(axis=0) <= hi).all():
                        fitted.append(pos)
                        starts.append(start)
                        if len(fitted) >= PROBE_FITS:
                            break
                slowest, replay = _at_low_end(cfg, name), np.random.default_rng()
                slowed = []
                for start in starts:  # each path that fits, drawn again at its slowest
                    replay.bit_generator.state = start
                    slowed.append(sampler(replay, t, slowest)[0])
        except (ArithmeticError, ValueError) as e:
            refusals.append(((name.lower(),), f"cannot draw a {name} path: {e}"))
            continue
        if len(fitted) < PROBE_FITS:
            refusals.append(
                ((name.lower(),), f"only {len(fitted)} of {MAX_TRIES} {name} paths fit in the "
                 f"scene box (at least {PROBE_FITS} must): widen scene or narrow these ranges")
            )  # fmt: skip
            continue
        travel = _median_travel_px(rig, np.stack(slowed)[:, : cfg.frames])
        if travel < MIN_TRAVEL_PX:
            ranges = " and ".join(PACE[name])
            refusals.append(
                ((name.lower(),), f"{name} paths barely move at the low end of {ranges}: a "
                 f"median {travel:.2g} px over the observed frames in the camera they move most "
                 f"in (at least {MIN_TRAVEL_PX} must): raise the lo of {ranges}, or lower fps")
            )  # fmt: skip
        firsts.append(fitted[0])
    if cfg.occluders is not None and not refusals:
        refusals += _pillars_without_room(cfg, firsts)
    return refusals


def _at_low_end(cfg: GeneratorConfig, name: str) -> GeneratorConfig:
    """``cfg`` with family ``name``'s ``PACE`` ranges shrunk to their lo: a range draws one
    number whatever its width, so the same stream draws the same paths, slowest."""
    section = getattr(cfg, name.lower())
    low = {
        key: Range(lo=getattr(section, key).lo, hi=getattr(section, key).lo) for key in PACE[name]
    }
    return cfg.model_copy(update={name.lower(): section.model_copy(update=low)})


def _median_travel_px(rig: list[Camera], paths: np.ndarray) -> float:
    """How far paths (N, T, 3) move in the image: the median over paths of the longer side of
    a path's pixel bounding box, in the camera where it is longest."""
    with np.errstate(all="ignore"):  # a point on a camera's plane divides by 0
        spread = np.stack([np.ptp(cam.project(paths)[0], axis=1).max(axis=-1) for cam in rig])
    return float(np.median(spread.max(axis=0)))


def _pillars_without_room(
    cfg: GeneratorConfig, paths: list[np.ndarray]
) -> list[tuple[tuple[str, ...], str]]:
    """Pillars that mostly find no place ``clearance`` clear of a path: each is left out after
    its tries, so the clips would hold few or none. A pillar is placed by itself (pillars do
    not avoid each other), so one per path gives the odds; half the paths must get theirs."""
    from generator.render.scene_objects import sample_pillars  # here: it imports this module

    assert cfg.occluders is not None
    one = cfg.model_copy(update={"occluders": cfg.occluders.model_copy(update={"count": 1})})
    rng = np.random.default_rng(PROBE_SEED)
    placed = sum(len(sample_pillars(rng, one, path)) for path in paths)
    if 2 * placed >= len(paths):
        return []
    return [
        (("occluders", "clearance"), f"a pillar fits {cfg.occluders.clearance:g} m clear of "
         f"only {placed} of {len(paths)} paths (one of each class; at least half must): "
         "lower clearance or width, or widen scene")
    ]  # fmt: skip


def _to_draw(info: pydantic.ValidationInfo) -> bool:
    """Whether the config is validated to draw samples from (any but ``stored_config``'s)."""
    return not (info.context or {}).get("stored", False)


def stored_config(raw: Any) -> GeneratorConfig:
    """The config a dataset's metadata stores, held to the rules its reader needs (types,
    bounds, the class set), not to those of what is worth drawing (``_renderable``, masks
    with ground truth off): those refuse generating and ``--resume``, but a dataset an older
    generator drew under older rules reads as well as any. Raises ``ValidationError``."""
    return GeneratorConfig.model_validate(raw, context={"stored": True})


class ConfigError(ValueError):
    """A config file that cannot be read or does not validate; the message is one line."""


def load_config(path: str | Path | None) -> GeneratorConfig:
    """The settings in ``path`` (a file or a shipped name), the defaults for None. A file
    holding none is refused: a hard.yaml emptied by a failed copy made an easy dataset."""
    if path is None:
        return GeneratorConfig()
    hint = "for the defaults, name the shipped config 'default'"
    raw = read_settings(config_file("generator", path, ConfigError), ConfigError, hint)
    try:
        return GeneratorConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"config {path}: {describe_validation_error(e)}") from None
