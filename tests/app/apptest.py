"""Running dashboard pages headless with Streamlit's AppTest, and reading what they show."""

import io
import json

from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from tests.support import PROJECT_ROOT

# Seconds per script run; the first run that loads the models imports TensorFlow.
RUN_TIMEOUT = 240


def page(name: str) -> AppTest:
    return AppTest.from_file(str(PROJECT_ROOT / "pages" / f"{name}.py"), default_timeout=RUN_TIMEOUT)


def dashboard() -> AppTest:
    """The whole app, from its router entrypoint: the sidebar and navigation every page shares."""
    return AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=RUN_TIMEOUT)


def texts(elements) -> str:
    return "\n".join(str(element.value) for element in elements)


def assert_no_exception(app: AppTest) -> None:
    assert not app.exception, texts(app.exception)


def plotly_specs(app: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def confusion_specs(app: AppTest) -> list[dict]:
    """The confusion matrices: heat maps titled by their model (the robustness heat map is untitled, and the
    sweeps' and the CNN's channel grids have titles of their own)."""
    return [
        spec
        for spec in plotly_specs(app)
        if any(trace["type"] == "heatmap" for trace in spec["data"])
        and spec["layout"].get("title", {}).get("text")
        and not spec["layout"]["title"]["text"].startswith(("Sweep #", "Block "))
    ]


def channel_grid_specs(app) -> list[dict]:
    """The CNN's channel grids of the inside-the-models view, in the order drawn."""
    return [spec for spec in plotly_specs(app) if spec["layout"].get("title", {}).get("text", "").startswith("Block ")]


def curve_specs(app: AppTest) -> list[dict]:
    return [spec for spec in plotly_specs(app) if "xaxis2" in spec["layout"]]


def button_labelled(app: AppTest, label: str):
    matches = [button for button in app.button if button.label == label]
    assert matches, f"no button labelled {label!r}; buttons: {[button.label for button in app.button]}"
    return matches[0]


def markdown_containing(app: AppTest, fragment: str) -> str:
    matches = [element.value for element in app.markdown if fragment in element.value]
    assert matches, f"no markdown contains {fragment!r}"
    return matches[0]


def digit_image_png(kind: str) -> bytes:
    """A dark-on-light picture of a hand-drawn-looking "1", a blank page, or a "7"."""
    image = Image.new("L", (200, 200), 255)
    pen = ImageDraw.Draw(image)
    if kind == "1":
        pen.line([(100, 30), (100, 170)], fill=0, width=16)
    elif kind == "7":
        pen.line([(55, 40), (145, 40), (85, 170)], fill=0, width=16)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def explorer_count(app: AppTest) -> int:
    line = markdown_containing(app, "matching images")
    return int(line.split(" of **")[1].split("**")[0].replace(",", ""))


def card_captions(app: AppTest) -> list[str]:
    return [element.value for element in app.markdown if "test #" in element.value]


def card_indices(app: AppTest) -> list[int]:
    return [int(value.split("test #")[1].rstrip("]")) for value in card_captions(app)]
