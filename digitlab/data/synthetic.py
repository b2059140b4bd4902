"""Pen drawings made by program: letters, symbols, doodles and digits drawn as strokes.

The not-a-digit decision needs examples of what people draw that is not a
digit, and its validation needs more of them than anyone could collect by
hand. Outline fonts look printed, so glyphs come from the Hershey fonts
(public-domain single-stroke vector fonts, packaged as ``Hershey-Fonts``):
each glyph is a list of pen strokes, like handwriting. Doodles and shapes
are made here as strokes too. Every drawing is bent by a random slant,
rotation, stretch and a smooth wobble, then drawn with a round pen of random
width on a canvas of random size, white ink on black, as a canvas gives it.

Fonts come in two disjoint sets, so a decision fitted on drawings from the
training fonts is validated on glyph designs it never saw.
"""

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from HersheyFonts import HersheyFonts
from PIL import Image, ImageDraw

Stroke = np.ndarray  # (points, 2) float x, y with y growing downwards
Drawing = list[Stroke]

# Each set has a sans, a script, a serif or bold face and a font of mathematical signs. The Greek and Cyrillic
# fonts are left out: too many of their letters (Θ, ο, З, Б, В) are written like digits.
TRAINING_FONTS = ("futural", "scripts", "timesr", "mathlow")
VALIDATION_FONTS = ("rowmans", "cursive", "futuram", "mathupp")
DIGIT_CHARACTERS = "0123456789"
# Letters that no digit resembles: O, I, l, S, Z, B, G, b, q, g, T, L and the like are left out, since a
# person may write a digit that way and refusing it would be wrong.
LETTER_CHARACTERS = "ACEFHKMNPRUVWXYcefhkmnruvwx"
SYMBOL_CHARACTERS = "+-=*#$%&?@<>~^"
# The mathematical fonts put signs where letters are; these four become ∂, (, ] and ∃, shaped like 6, 1 and 3.
LOOK_ALIKES = {"mathlow": "mruv", "mathupp": "mruv"}
# Glyphs smaller than this share of the font's height (dots, commas) are not drawings anyone would submit.
MIN_GLYPH_SHARE = 0.25
# Points are inserted along strokes at this spacing (in a unit box) so the wobble bends them smoothly.
RESAMPLE_STEP = 0.02


@dataclass(frozen=True)
class Pen:
    """How a drawing is put on its canvas: the canvas side and the pen's width, both in pixels."""

    canvas: int
    width: float


@functools.cache
def _font(name: str) -> HersheyFonts:
    font = HersheyFonts()
    font.load_default_font(name)
    return font


def _strokes(font_name: str, character: str) -> list[Stroke]:
    return [
        np.array(stroke, dtype=np.float64) for stroke in _font(font_name).strokes_for_text(character) if len(stroke) > 1
    ]


def _extent(strokes: list[Stroke]) -> float:
    points = np.concatenate(strokes)
    return float((points.max(axis=0) - points.min(axis=0)).max())


@functools.cache
def glyph(font_name: str, character: str) -> tuple[Stroke, ...]:
    """The strokes of one character in a Hershey font, in a unit box, y downwards; empty if it is a dot."""
    strokes = _strokes(font_name, character)
    if not strokes or _extent(strokes) < MIN_GLYPH_SHARE * _extent(_strokes(font_name, "0")):
        return ()
    return tuple(unit_box(strokes))


def glyphs(fonts: tuple[str, ...], characters: str) -> list[tuple[str, str, tuple[Stroke, ...]]]:
    """Every drawable (font, character, strokes) of ``characters`` in ``fonts``."""
    found = []
    for font_name in fonts:
        for character in characters:
            if character in LOOK_ALIKES.get(font_name, ""):
                continue
            strokes = glyph(font_name, character)
            if strokes:
                found.append((font_name, character, strokes))
    return found


def _arc(rng: np.random.Generator, centre, radius, start: float, end: float, points: int = 24) -> Stroke:
    angles = np.linspace(start, end, points) + rng.normal(0, 0.03, points)
    return np.stack([centre[0] + radius[0] * np.cos(angles), centre[1] + radius[1] * np.sin(angles)], axis=1)


def _polyline(*points) -> Stroke:
    return np.array(points, dtype=np.float64)


def _smiley(rng: np.random.Generator) -> Drawing:
    face = _arc(rng, (0.5, 0.5), (0.5, 0.5), 0, 2 * np.pi, 40)
    eyes = [_arc(rng, (x, 0.35), (0.05, 0.06), 0, 2 * np.pi, 10) for x in (0.33, 0.67)]
    mouth = _arc(rng, (0.5, 0.55), (0.25, 0.2), 0.2, np.pi - 0.2)
    return [face, *eyes, mouth]


def _house(rng: np.random.Generator) -> Drawing:
    walls = _polyline((0.1, 0.45), (0.1, 1), (0.9, 1), (0.9, 0.45), (0.1, 0.45))
    roof = _polyline((0.05, 0.47), (0.5, 0), (0.95, 0.47))
    door = _polyline((0.42, 1), (0.42, 0.7), (0.58, 0.7), (0.58, 1))
    return [walls, roof, door] if rng.random() < 0.7 else [walls, roof]


def _fish(rng: np.random.Generator) -> Drawing:
    body = _arc(rng, (0.42, 0.5), (0.4, 0.22), 0, 2 * np.pi, 36)
    tail = _polyline((0.8, 0.5), (1, 0.3), (1, 0.7), (0.8, 0.5))
    eye = _arc(rng, (0.2, 0.45), (0.03, 0.03), 0, 2 * np.pi, 8)
    return [body, tail, eye]


def _cat(rng: np.random.Generator) -> Drawing:
    head = _arc(rng, (0.5, 0.58), (0.4, 0.36), 0, 2 * np.pi, 40)
    ears = [_polyline((0.18, 0.38), (0.22, 0.05), (0.4, 0.25)), _polyline((0.6, 0.25), (0.78, 0.05), (0.82, 0.38))]
    whiskers = [_polyline((0.0, 0.6 + dy), (0.3, 0.65)) for dy in (-0.05, 0.05)]
    whiskers += [_polyline((0.7, 0.65), (1.0, 0.6 + dy)) for dy in (-0.05, 0.05)]
    return [head, *ears, *whiskers]


def _sun(rng: np.random.Generator) -> Drawing:
    disc = _arc(rng, (0.5, 0.5), (0.22, 0.22), 0, 2 * np.pi, 30)
    rays = []
    for angle in np.linspace(0, 2 * np.pi, int(rng.integers(6, 11)), endpoint=False):
        direction = np.array([np.cos(angle), np.sin(angle)])
        rays.append(np.stack([0.5 + 0.3 * direction, 0.5 + 0.5 * direction]))
    return [disc, *rays]


def _star(rng: np.random.Generator) -> Drawing:
    angles = -np.pi / 2 + np.arange(6) * 4 * np.pi / 5
    return [np.stack([0.5 + 0.5 * np.cos(angles), 0.5 + 0.5 * np.sin(angles)], axis=1)]


def _heart(rng: np.random.Generator) -> Drawing:
    t = np.linspace(0, 2 * np.pi, 48)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return [np.stack([x, y], axis=1)]


def _polygon(rng: np.random.Generator) -> Drawing:
    # Five or more corners drawn quickly make a 0.
    corners = int(rng.choice([3, 4]))
    angles = rng.uniform(0, 2 * np.pi) + np.arange(corners + 1) * 2 * np.pi / corners
    return [np.stack([np.cos(angles), np.sin(angles)], axis=1)]


def _arrow(rng: np.random.Generator) -> Drawing:
    return [_polyline((0, 0.5), (1, 0.5)), _polyline((0.75, 0.25), (1, 0.5), (0.75, 0.75))]


def _spiral(rng: np.random.Generator) -> Drawing:
    t = np.linspace(0, rng.uniform(3, 5) * np.pi, 80)
    return [np.stack([t * np.cos(t), t * np.sin(t)], axis=1)]


def _zigzag(rng: np.random.Generator) -> Drawing:
    teeth = int(rng.integers(3, 7))
    x = np.linspace(0, 1, 2 * teeth + 1)
    y = np.where(np.arange(x.size) % 2 == 0, 0.0, rng.uniform(0.3, 0.8))
    return [np.stack([x, y], axis=1)]


def _hatching(rng: np.random.Generator) -> Drawing:
    lines = int(rng.integers(3, 7))
    return [_polyline((0, offset), (1, offset + 0.3)) for offset in np.linspace(0, 0.7, lines)]


def _grid(rng: np.random.Generator) -> Drawing:
    cuts = np.linspace(0, 1, int(rng.integers(3, 5)))
    return [_polyline((0, c), (1, c)) for c in cuts] + [_polyline((c, 0), (c, 1)) for c in cuts]


def _scribble(rng: np.random.Generator) -> Drawing:
    """A smooth random curve through several points, as a child scribbles."""
    anchors = rng.uniform(0, 1, (int(rng.integers(5, 10)), 2))
    t = np.linspace(0, 1, anchors.shape[0])
    dense = np.linspace(0, 1, 120)
    curve = np.stack([np.interp(dense, t, anchors[:, axis]) for axis in (0, 1)], axis=1)
    # A moving average turns the corners into curves.
    kernel = np.ones(9) / 9
    return [np.stack([np.convolve(np.pad(curve[:, axis], 4, mode="edge"), kernel, "valid") for axis in (0, 1)], 1)]


def _tree(rng: np.random.Generator) -> Drawing:
    crown = _arc(rng, (0.5, 0.35), (0.35, 0.33), 0, 2 * np.pi, 36)
    return [crown, _polyline((0.45, 0.66), (0.45, 1)), _polyline((0.55, 0.66), (0.55, 1))]


def _cloud(rng: np.random.Generator) -> Drawing:
    bumps = [_arc(rng, (x, 0.45 - 0.1 * (x == 0.5)), (0.18, 0.2), np.pi, 2 * np.pi, 14) for x in (0.2, 0.5, 0.8)]
    return [*bumps, _polyline((0.02, 0.45), (0.02, 0.62), (0.98, 0.62), (0.98, 0.45))]


DOODLES: dict[str, Callable[[np.random.Generator], Drawing]] = {
    "smiley": _smiley,
    "house": _house,
    "fish": _fish,
    "cat": _cat,
    "sun": _sun,
    "star": _star,
    "heart": _heart,
    "polygon": _polygon,
    "arrow": _arrow,
    "spiral": _spiral,
    "zigzag": _zigzag,
    "hatching": _hatching,
    "grid": _grid,
    "scribble": _scribble,
    "tree": _tree,
    "cloud": _cloud,
}


def unit_box(drawing: Drawing) -> Drawing:
    """The drawing scaled so its longer side is 1, at the origin."""
    points = np.concatenate(drawing)
    low = points.min(axis=0)
    extent = max(float((points.max(axis=0) - low).max()), 1e-9)
    return [(stroke - low) / extent for stroke in drawing]


def _resampled(stroke: Stroke) -> Stroke:
    steps = np.linalg.norm(np.diff(stroke, axis=0), axis=1)
    distance = np.concatenate([[0.0], np.cumsum(steps)])
    if distance[-1] <= 0:
        return stroke
    dense = np.linspace(0, distance[-1], max(2, int(distance[-1] / RESAMPLE_STEP) + 1))
    return np.stack([np.interp(dense, distance, stroke[:, axis]) for axis in (0, 1)], axis=1)


def handwritten(drawing: Drawing, rng: np.random.Generator, *, wobble: float = 0.04) -> Drawing:
    """The drawing as a hand would make it: slanted, rotated, stretched and smoothly wobbled, in a unit box."""
    drawing = [_resampled(stroke) for stroke in unit_box(drawing)]
    angle = rng.normal(0, 0.12)
    shear = rng.normal(0, 0.2)
    stretch = np.exp(rng.normal(0, 0.15))
    transform = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    transform = transform @ np.array([[stretch, shear], [0, 1 / stretch]])
    # The wobble is a sum of two smooth waves in each direction, so nearby points move together.
    frequencies = rng.normal(0, 2.5, (2, 2, 2))
    phases = rng.uniform(0, 2 * np.pi, (2, 2))
    amplitude = wobble * rng.uniform(0.3, 1.0)

    def bend(points: np.ndarray) -> np.ndarray:
        moved = points @ transform.T
        for axis in (0, 1):
            waves = np.sin(points @ frequencies[axis].T * 2 * np.pi + phases[axis])
            moved[:, axis] += amplitude * waves.sum(axis=1) / 2
        return moved

    return unit_box([bend(stroke) for stroke in drawing])


def random_pen(rng: np.random.Generator) -> Pen:
    """A canvas side and pen width as drawing apps and tablets give them, from hair-thin to finger-thick."""
    canvas = int(rng.integers(64, 281))
    return Pen(canvas=canvas, width=float(canvas * np.exp(rng.uniform(np.log(0.012), np.log(0.11)))))


def draw(drawing: Drawing, pen: Pen, rng: np.random.Generator) -> np.ndarray:
    """A float32 canvas in [0, 1], white ink on black, with the drawing filling most of it, off centre."""
    fill = rng.uniform(0.55, 0.85)
    span = fill * pen.canvas - pen.width
    points = np.concatenate(drawing)
    extent = points.max(axis=0)
    room = pen.canvas - span * extent
    offset = room * rng.uniform(0.3, 0.7, 2)
    # Drawn at twice the size and averaged down, which smooths the pen's edge as a canvas's antialiasing does.
    scale = 2
    image = Image.new("L", (pen.canvas * scale, pen.canvas * scale), 0)
    painter = ImageDraw.Draw(image)
    radius = max(0.5, pen.width * scale / 2)
    for stroke in drawing:
        coordinates = [tuple(point) for point in ((stroke * span + offset) * scale)]
        painter.line(coordinates, fill=255, width=max(1, round(2 * radius)), joint="curve")
        for x, y in (coordinates[0], coordinates[-1]):
            painter.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    small = image.resize((pen.canvas, pen.canvas), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def drawn(drawing: Drawing, rng: np.random.Generator) -> np.ndarray:
    """The drawing bent as by hand and drawn with a random pen on a random canvas."""
    return draw(handwritten(drawing, rng), random_pen(rng), rng)


@dataclass(frozen=True)
class SyntheticDrawing:
    """One drawing made here: what it shows, its kind (digit, letter, symbol, doodle) and the canvas."""

    kind: str
    name: str
    image: np.ndarray


def non_digit_drawings(
    fonts: tuple[str, ...], count: int, seed: int | np.random.SeedSequence
) -> Iterator[SyntheticDrawing]:
    """``count`` drawings that are not digits: letters and symbols from ``fonts``, and doodles, in equal shares."""
    rng = np.random.default_rng(seed)
    letters = glyphs(fonts, LETTER_CHARACTERS)
    symbols = glyphs(fonts, SYMBOL_CHARACTERS)
    doodle_names = sorted(DOODLES)
    for index in range(count):
        kind = ("letter", "symbol", "doodle")[index % 3]
        if kind == "doodle":
            name = doodle_names[int(rng.integers(len(doodle_names)))]
            strokes = DOODLES[name](rng)
        else:
            pool = letters if kind == "letter" else symbols
            font_name, character, strokes = pool[int(rng.integers(len(pool)))]
            name = f"{character} ({font_name})"
        yield SyntheticDrawing(kind=kind, name=name, image=drawn(list(strokes), rng))


def with_bar(seven: Drawing) -> Drawing:
    """A 7 with a short bar across its stem at mid-height, as much of Europe writes it."""
    points = np.concatenate(seven)
    middle = points[np.abs(points[:, 1] - 0.55) < 0.1]
    centre = float(middle[:, 0].mean()) if middle.size else 0.5
    return [*seven, _polyline((centre - 0.2, 0.55), (centre + 0.2, 0.53))]


def digit_drawings(
    fonts: tuple[str, ...], count: int, seed: int | np.random.SeedSequence
) -> Iterator[tuple[int, np.ndarray]]:
    """``count`` digits drawn from ``fonts`` the same way as the non-digits, with their labels; a third of the
    7s get a bar."""
    rng = np.random.default_rng(seed)
    digits = glyphs(fonts, DIGIT_CHARACTERS)
    for _ in range(count):
        font_name, character, strokes = digits[int(rng.integers(len(digits)))]
        drawing = with_bar(list(strokes)) if character == "7" and rng.random() < 1 / 3 else list(strokes)
        yield int(character), drawn(drawing, rng)
