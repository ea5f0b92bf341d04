"""Story 2 of ``fastnn demo`` (a line with outliers): the numbers behind its picture and
the picture itself. tests/test_cli.py runs the command and checks the table's claims
(loss order by epochs to 99%, slopes against the true line); these check the curves the
panels draw, the saw-tooth's explanation, and that the figure shows them honestly."""

import numpy as np
import pytest

from fastnn import _demo


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    """Story 2 run once, with the figure kept (``_save`` closes it, its artists stay)."""
    figures = []
    save = _demo._save

    def keep(fig, plot_dir, name):
        figures.append(fig)
        return save(fig, plot_dir, name)

    lines = []
    plot_dir = tmp_path_factory.mktemp("demo") if _demo._pyplot() is not None else None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_demo, "_save", keep)
        result = _demo.outliers(out=lines.append, plot_dir=plot_dir)
    result["text"] = "\n".join(lines)
    result["figure"] = figures[0] if figures else None
    return result


def figure(story):
    if story["figure"] is None:
        pytest.skip("matplotlib is not installed: no figure to check")
    return story["figure"]


# --------------------------------------------------------------------------- the data


def test_recording_every_epoch_does_not_change_the_fit(story):
    """The per-epoch lines come from one partial_fit per epoch: the same loss curve as a
    plain fit of as many epochs, and the last recorded line is the model's line."""
    x, y = story["x"], story["y"]
    for loss, fit in story["fits"].items():
        plain = _demo.fit_line(x, y, loss, epochs=len(fit["curve"]))[0]
        np.testing.assert_allclose(fit["curve"], plain[-1].loss_curve_, rtol=1e-12)
        ends = fit["model"].predict(np.array([[0.0], [1.0]]))
        np.testing.assert_allclose([fit["intercepts"][-1], fit["slopes"][-1]],
                                   [ends[0], ends[1] - ends[0]], rtol=1e-12)


def test_the_minima_are_the_losses_minima(story):
    """The curves are drawn against each loss's own minimum: squared error's is least
    squares, absolute error's the least-absolute-deviations line (a linear program)."""
    from sklearn.linear_model import QuantileRegressor

    x, y, fits = story["x"], story["y"], story["fits"]
    slope, intercept = np.polyfit(x, y, 1)
    best = 0.5 * np.mean((slope * x + intercept - y) ** 2)
    assert abs(fits["squared_error"]["minimum"] - best) < 1e-12 * best
    assert abs(fits["squared_error"]["best_slope"] - slope) < 1e-9
    lad = QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs").fit(x.reshape(-1, 1), y)
    residual = lad.predict(x.reshape(-1, 1)) - y
    best = np.mean(np.abs(residual))
    assert 0 <= fits["absolute_error"]["minimum"] - best < 1e-7
    assert abs(fits["absolute_error"]["best_slope"] - lad.coef_[0]) < 1e-4
    # the kink: the least-absolute-deviations line passes through 2 of the 40 points
    assert np.sum(np.abs(residual) < 1e-9) == 2


def test_squared_error_converges_first_to_the_line_the_outliers_pull(story):
    fits, true = story["fits"], _demo.LINE_SLOPE
    se, hu = fits["squared_error"], fits["huber"]
    # both reach their own minimum, squared error first ...
    assert se["settled"] is not None and hu["settled"] is not None
    assert se["settled"] < hu["settled"]
    for fit in (se, hu):
        assert len(fit["rises"]) == 0  # the loss fell at every epoch
        assert abs(fit["slopes"][-1] - fit["best_slope"]) < 1e-6
    # the slopes get within 0.01 of their optimum in the same order, squared error's far
    # from the true one
    def within(fit, tol=0.01):
        return np.flatnonzero(np.abs(fit["slopes"] - fit["best_slope"]) > tol)[-1] + 1

    assert within(se) < 40 < within(hu) < within(fits["absolute_error"])
    assert se["best_slope"] < true / 2
    assert hu["settled"] < len(hu["curve"]) and abs(hu["best_slope"] - true) < 0.15


def test_absolute_error_saw_tooth_circles_its_minimum(story):
    """Absolute error's gradient is the mean of sign(r) x: it does not shrink near the
    minimum, so gradient descent with a constant step never settles. The loss reaches the
    neighbourhood of its minimum, then rises and falls in a band above it."""
    ab = story["fits"]["absolute_error"]
    assert ab["settled"] is None
    first = ab["rises"][0]
    assert first > ab["epochs_to_99"]  # the saw-tooth starts once it is there
    assert len(ab["rises"]) >= 10
    tail = ab["remaining"][first:]
    assert np.all((1e-7 < tail) & (tail < 1e-3))  # a band: never closer, never away
    assert 1e-4 < abs(ab["slope"] - ab["best_slope"]) < 1e-2
    # it is the step: with a quarter of the learning rate the band is lower
    x, y = story["x"], story["y"]
    slow = np.asarray(_demo.fit_line(x, y, "absolute_error", lr=0.025, epochs=1200)[0][-1]
                      .loss_curve_)
    assert np.max(slow[600:] - ab["minimum"]) < np.max(ab["curve"][first:] - ab["minimum"]) / 2


def test_printed_notes_quote_the_data(story):
    text, fits = story["text"], story["fits"]
    ab = fits["absolute_error"]
    assert f"From epoch {ab['rises'][0]} the loss rises in {len(ab['rises'])} " in text
    for loss, name in (("squared_error", "squared error"), ("huber", "Huber")):
        assert f"{name} from epoch {fits[loss]['settled']}" in text


# --------------------------------------------------------------------------- the figure


def test_every_line_is_labelled_and_in_its_axes_legend(story):
    fig = figure(story)
    assert len(fig.axes) == 3
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
        artists = list(ax.lines) + list(ax.collections)
        labels = [a.get_label() for a in artists]
        assert all(label and not label.startswith("_") for label in labels), labels
        legend = ax.get_legend()
        assert legend is not None
        assert sorted(t.get_text() for t in legend.get_texts()) == sorted(labels)
    right = fig.axes[2]
    assert any("99%" in line.get_label() for line in right.lines)  # the dotted 1% line


def test_loss_panel_draws_true_values_inside_the_view(story):
    """No clipping: every point of every loss curve is finite, positive (log scale) and
    inside the axes' limits, and each curve is the data, not a floor."""
    fig = figure(story)
    right = fig.axes[2]
    assert right.get_yscale() == "log"
    bottom, top = right.get_ylim()
    left, end = right.get_xlim()
    curves = [line for line in right.lines if len(line.get_xdata()) > 2]
    assert len(curves) == 3
    for line, fit in zip(curves, story["fits"].values()):
        xs, ys = (np.asarray(v, dtype=float) for v in line.get_data())
        assert np.all(np.isfinite(ys)) and np.all(ys > 0)
        assert bottom <= ys.min() and ys.max() <= top and left <= xs.min() and xs.max() <= end
        np.testing.assert_array_equal(ys, fit["remaining"][xs.astype(int)])
        # a curve stops where only rounding is left, not on a floor of its own
        assert np.sum(ys == ys.min()) == 1
    middle = fig.axes[1]
    bottom, top = middle.get_ylim()
    for line in middle.lines:
        ys = np.asarray(line.get_ydata(), dtype=float)
        assert np.all(np.isfinite(ys)) and bottom <= ys.min() and ys.max() <= top
