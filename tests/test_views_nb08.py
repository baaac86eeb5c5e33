"""Notebook 08's dashboard, driven as a learner would: every main control's extremes render without
error and change the figure, the summary follows the controls, and saving scenarios works (the
panel's buttons never raise into the page)."""

import re

import pytest

from dpfl_course import testing
from dpfl_course.testing import live_notebook, slider_range

NOTEBOOK = "08_capstone_dashboard.ipynb"
CONTROLS = {"dataset", "partition", "alpha", "num_clients", "clients_per_round", "num_rounds", "mode", "epsilon",
            "delta", "clip_norm"}
# Two lines: the setting that was run, then what it gave.
SETTING = re.compile(r"(?P<data>[^·]+) · (?P<split>[^·]+) · (?P<clients>\d+) clients, "
                     r"(?P<per_round>\d+) per round · (?P<rounds>\d+) rounds · (?P<mode>[^,\n]+)(, target ε = (?P<target>[\d.e+]+), "
                     r"δ = (?P<delta>[\de.+-]+), clip (?P<clip>[\d.e+-]+))?")
ACCURACY = re.compile(r"final accuracy (?P<acc>[\d.]+) % \(non-private (?P<base>[\d.]+) %\) · ")
PRIVATE = re.compile(r"ε spent (?P<spent>[\d.]+) · noise multiplier (?P<z>[\d.]+)")


@pytest.fixture(scope="module")
def nb08():
    with live_notebook(NOTEBOOK) as namespace:
        yield namespace


@pytest.fixture
def view(nb08):
    view = nb08["view"]
    defaults = {name: control.value for name, control in view.controls.items()}
    yield view
    # every test starts from the defaults: set them all without a render each (the view's own
    # observer is detached meanwhile; some intermediate settings would be slow), then render once
    for control in view.controls.values():
        control.unobserve(view._on_change, names="value")
    try:
        for name, value in defaults.items():
            view.controls[name].value = value
    finally:
        for control in view.controls.values():
            control.observe(view._on_change, names="value")
    assert view.refresh()


def parse(text):
    setting, _, results = text.partition("\n")
    s, m = SETTING.fullmatch(setting), ACCURACY.match(results)
    assert s and m, f"summary not in the expected shape: {text!r}"
    out = {"mode": s["mode"], "split": s["split"], "data": s["data"], "clients": int(s["clients"]),
           "per_round": int(s["per_round"]), "rounds": int(s["rounds"]), "acc": float(m["acc"]),
           "base": float(m["base"])}
    p = PRIVATE.search(results)
    if p:
        out.update(spent=float(p["spent"]), target=float(s["target"]), delta=float(s["delta"]),
                   clip=float(s["clip"]), z=float(p["z"]))
    else:
        assert results.endswith("no privacy guarantee (ε = ∞)") and s["target"] is None, text
    return out


def set_controls(view, **values):
    return parse(testing.set_controls(view, **values))


def extremes(control):
    if hasattr(control, "options"):  # a dropdown: every option (ipywidgets keeps (label, value) pairs)
        return [option[1] if isinstance(option, tuple) else option for option in control.options]
    return list(slider_range(control))


def test_dashboard_has_the_controls_of_the_lab(nb08):
    assert set(nb08["view"].controls) == CONTROLS
    assert nb08["panel"].view is nb08["view"]


def test_every_control_extreme_renders_and_changes_the_figure(view):
    default_image = view.image.value
    default_summary = view.last_summary
    for name, control in view.controls.items():
        default = control.value
        for value in extremes(control):
            if value == default:
                continue
            control.value = value
            assert view.last_error is None, f"{name}={value}: {view.last_error!r}"
            parse(view.last_summary)
            assert view.image.value != default_image, f"{name}={value} did not change the figure"
            assert view.last_summary != default_summary, f"{name}={value} did not change the summary"
        control.value = default
    assert view.last_summary == default_summary  # back at the defaults: the same run, the same numbers


def test_heaviest_corner_renders(view):
    # the most work the controls can ask for, in the slowest mode (privacy set first: the intermediate
    # renders stay cheap), then the adaptive clip at the same corner
    summary = set_controls(view, mode="local", epsilon=0.5, delta=1e-7, clip_norm=0.1, num_clients=200,
                           clients_per_round=100, num_rounds=60)
    assert summary["spent"] <= summary["target"]
    summary = set_controls(view, mode="adaptive")
    assert 0.49 <= summary["spent"] <= 0.5


def test_summary_follows_the_privacy_controls(view):
    none = set_controls(view, mode="none")
    assert none["mode"] == "no DP (FedAvg)" and none["acc"] == none["base"]
    central = set_controls(view, mode="central", epsilon=8.0)
    assert central["base"] == none["base"]  # the same setting's cached baseline
    assert central["target"] == 8 and 7.9 <= central["spent"] <= 8.0  # calibrated to the target
    tight = set_controls(view, epsilon=0.5)
    assert tight["z"] > central["z"] and tight["acc"] < central["acc"]
    loose = set_controls(view, epsilon=50.0)
    assert loose["z"] < central["z"] and loose["acc"] > tight["acc"]
    local = set_controls(view, mode="local", epsilon=8.0)
    assert local["mode"] == "local DP (record level)" and 0 < local["spent"] <= 8.0
    assert view.last_summary.endswith("per example") and local["clip"] == 1
    adaptive = set_controls(view, mode="adaptive")
    assert adaptive["z"] == central["z"] and "updates clipped" in view.last_summary


def test_summary_follows_the_data_controls(view, nb08):
    base = set_controls(view, mode="none")
    assert (base["data"], base["split"], base["clients"], base["per_round"], base["rounds"]) == \
        ("digits", "Dirichlet α = 0.5", 100, 20, 30)
    skewed = set_controls(view, alpha=0.01)
    assert skewed["split"] == "Dirichlet α = 0.01" and skewed["base"] != base["base"]
    sizes = set_controls(view, partition="quantity")
    assert sizes["split"] == "sizes Dirichlet α = 0.01" and sizes["base"] != skewed["base"]
    iid = set_controls(view, partition="iid")
    assert iid["split"] == "IID" and iid["base"] != skewed["base"]
    assert set_controls(view, alpha=100.0)["base"] == iid["base"]  # α means nothing to an IID split
    cancer = set_controls(view, dataset="breast_cancer")
    assert cancer["data"] == "breast cancer" and cancer["base"] > 80  # two classes, standardised: an easy table
    # more clients per round than clients: all of them, no error
    capped = set_controls(view, dataset="digits", num_clients=10, clients_per_round=100)
    assert capped["per_round"] == 10 and nb08["lab"].last.scenario.clients_per_round == 10


def test_quantity_skew_makes_local_dp_pay_for_its_most_exposed_client(view):
    # local DP sets one noise multiplier for the worst-off client: clients of a handful of examples
    # (their batches nearly all their data, no amplification) force more noise on everyone than
    # an IID split needs
    iid = set_controls(view, mode="local", num_clients=20, clients_per_round=10, partition="iid")
    skewed = set_controls(view, partition="quantity", alpha=0.1)
    assert skewed["z"] > iid["z"] and skewed["acc"] < iid["acc"]


def test_render_is_pure(nb08):
    render = nb08["render_dashboard"]
    settings = dict(dataset="digits", partition="iid", alpha=1.0, num_clients=50, clients_per_round=10,
                    num_rounds=10, mode="central", epsilon=4.0, delta=1e-5, clip_norm=0.5)
    (_, first), (_, second) = (render(**settings) for _ in range(2))
    assert first == second


def test_saving_scenarios_compares_them_side_by_side(view, nb08):
    panel = nb08["panel"]
    panel.clear()
    assert len(panel.book) == 0 and panel.comparison.value == b""
    set_controls(view, mode="central")
    panel.save_button.click()
    assert len(panel.book) == 1 and panel.comparison.value
    one = panel.comparison.value
    set_controls(view, mode="none")
    panel.save_button.click()
    set_controls(view, mode="local", num_clients=10, clients_per_round=10)
    panel.save_button.click()
    assert len(panel.book) == 3 and panel.comparison.value != one
    table = panel.table.value
    for name in ("central DP (user level)", "no DP (FedAvg)", "local DP (record level)"):
        assert name in table
    assert [r.scenario.mode for r in panel.book] == ["central", "none", "local"]
    panel.save_button.click()  # the same run again: no duplicate
    assert len(panel.book) == 3
    panel.clear_button.click()
    assert len(panel.book) == 0 and "Saved scenarios appear here" in panel.table.value


def test_a_failing_save_shows_a_message_not_a_traceback(view, nb08):
    panel = nb08["panel"]
    panel.clear()
    good = panel.scenario_of
    try:
        panel.scenario_of = lambda **values: (_ for _ in ()).throw(ValueError("epsilon must be a finite number"))
        panel.save_button.click()
    finally:
        panel.scenario_of = good
    assert len(panel.book) == 0
    assert "Cannot do this:" in panel.message.value and "epsilon must be" in panel.message.value
