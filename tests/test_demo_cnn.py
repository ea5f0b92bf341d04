"""Story 4 of ``fastnn demo``: a small CNN against the MLP on the digits as images."""

import numpy as np
import pytest

from fastnn import _demo


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    lines = []
    plot_dir = tmp_path_factory.mktemp("demo") if _demo._pyplot() is not None else None
    result = _demo.cnn(epochs=30, out=lines.append, plot_dir=plot_dir)
    result["text"] = "\n".join(lines)
    return result


def test_the_cnn_is_ahead_of_the_mlp(story):
    cnn, mlp = story["rows"]
    assert (cnn["name"], mlp["name"]) == ("CNN", "MLP")
    assert cnn["accuracy"] > mlp["accuracy"] > 0.9, story["text"]
    assert len(cnn["loss_curve"]) == len(mlp["loss_curve"]) == 30
    assert cnn["loss_curve"][-1] < cnn["loss_curve"][0]
    # the printed table holds the same numbers
    assert f"{cnn['accuracy']:.4f}" in story["text"] and f"{mlp['accuracy']:.4f}" in story["text"]


def test_the_png_shows_both_curves_and_the_filters(story):
    if story["png"] is None:
        pytest.skip("matplotlib is not installed: no PNG")
    assert story["png"].name == _demo.PNG["cnn"]
    assert story["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_network_is_the_one_printed(story):
    module = _demo.digits_cnn_module()
    assert module.summary((1, 8, 8)).splitlines()[-1].endswith("9,930 parameters")
    assert "9,930 parameters" in story["text"]
    assert np.isfinite(story["rows"][0]["seconds"])
