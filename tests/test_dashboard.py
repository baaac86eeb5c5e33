"""The capstone lab (dpfl_course.dashboard): scenarios are checked, noise is calibrated to the target
ε for every client, runs equal the package's own FedAvg / DP strategies, caches hold only what
does not change, saved runs are kept without duplicates, and the panel never raises into the page."""

import math
import re

import numpy as np

import pytest
import torch

from dpfl_course import dashboard as D
from dpfl_course import dp, fl, widgets

# Small settings: a run of these takes a few tens of milliseconds.
SMALL = dict(num_clients=10, clients_per_round=5, num_rounds=3)


@pytest.fixture(scope="module")
def lab():
    return D.Lab()


BAD_SETTINGS = [
    ("dataset", "mnist"), ("partition", "shards"), ("alpha", 0.0), ("alpha", math.nan), ("num_clients", 1),
    ("num_clients", 2.5), ("clients_per_round", 0), ("clients_per_round", 101), ("num_rounds", 0),
    ("mode", "dp"), ("epsilon", 0.0), ("epsilon", math.inf), ("delta", 1.0), ("delta", 0.0),
    ("clip_norm", 0.0), ("clip_norm", -1.0), ("local_epochs", 0), ("batch_size", 0), ("lr", 0.0),
    ("hidden", 0), ("seed", -1),
]


@pytest.mark.parametrize("name,value", BAD_SETTINGS, ids=[f"{n}={v}" for n, v in BAD_SETTINGS])
def test_scenario_rejects_bad_settings_naming_them(name, value):
    with pytest.raises(ValueError, match=name):
        D.Scenario(**{name: value})


def test_scenario_coerces_numbers_so_equal_settings_are_equal():
    a = D.Scenario(alpha=np.float64(0.5), num_clients=np.int64(100), epsilon=8)
    b = D.Scenario(alpha=0.5, num_clients=100, epsilon=8.0)
    assert a == b and hash(a) == hash(b)
    assert type(a.num_clients) is int and type(a.epsilon) is float


def test_baseline_drops_only_the_privacy_settings():
    a = D.Scenario(mode="local", epsilon=2.0, delta=1e-6, clip_norm=0.3, partition="iid", num_clients=50)
    b = a.replace(mode="adaptive", epsilon=30.0)
    assert a.baseline() == b.baseline()
    assert a.baseline().mode == "none" and a.baseline().partition == "iid" and a.baseline().num_clients == 50
    assert a.baseline() != a.replace(num_clients=60).baseline()


def test_central_noise_is_calibrated_on_the_client_sampling_rate_and_rounds():
    s = D.Scenario(mode="central", epsilon=4.0, num_clients=100, clients_per_round=25, num_rounds=20)
    z = D.calibrate_noise(s, [13] * 100)
    assert z == dp.noise_multiplier_for(target_epsilon=4.0, sample_rate=0.25, steps=20, delta=1e-5)
    assert D.calibrate_noise(s.replace(mode="adaptive"), [13] * 100) == z
    assert D.calibrate_noise(s.replace(mode="none"), [13] * 100) is None


@pytest.mark.parametrize("sizes", [[3, 12, 25, 40, 133], [10, 11, 19, 20, 21], [135] * 10],
                         ids=["spread", "around-one-batch", "equal"])
def test_local_noise_keeps_every_client_within_the_target_and_is_not_wasted(sizes):
    s = D.Scenario(mode="local", epsilon=3.0, num_clients=len(sizes), clients_per_round=2, num_rounds=10)
    z = D.calibrate_noise(s, sizes)
    spent = [dp.epsilon(noise_multiplier=z, sample_rate=q, steps=steps, delta=s.delta)
             for q, steps in (D.local_dp_accounting(n, batch_size=s.batch_size, local_epochs=s.local_epochs,
                                                    num_rounds=s.num_rounds) for n in sizes)]
    assert max(spent) <= 3.0
    # noise_multiplier_for stops within 0.1 % below the target; the worst client is at it
    assert max(spent) >= 3.0 * (1 - 2 * dp.NOISE_MULTIPLIER_RTOL)


def test_calibrate_noise_rejects_bad_inputs():
    with pytest.raises(ValueError, match="scenario"):
        D.calibrate_noise({"mode": "central"}, [10])
    with pytest.raises(ValueError, match="client size"):
        D.calibrate_noise(D.Scenario(mode="local"), [10, 0])
    with pytest.raises(ValueError, match="client_sizes"):
        D.calibrate_noise(D.Scenario(mode="local"), [])


def test_local_dp_accounting_is_one_round_of_local_dp_sgd_times_the_rounds():
    assert D.local_dp_accounting(3, batch_size=10, local_epochs=2, num_rounds=30) == (1.0, 60)
    assert D.local_dp_accounting(25, batch_size=10, local_epochs=2, num_rounds=30) == (0.4, 180)
    for n in (1, 9, 10, 11, 99, 135):
        q, steps = fl.local_dp_plan(n, local_epochs=3, batch_size=10)
        assert D.local_dp_accounting(n, batch_size=10, local_epochs=3, num_rounds=7) == (q, 7 * steps)
    with pytest.raises(ValueError, match="num_rounds"):
        D.local_dp_accounting(10, batch_size=10, local_epochs=1, num_rounds=0)


def test_a_run_without_dp_is_the_package_fedavg(lab):
    s = D.Scenario(mode="none", **SMALL)
    result = lab.run(s)
    X, y, X_test, y_test, _ = lab.dataset("digits")
    parts = fl.make_client_data(X, y, __import__("dpfl_course").data.partition_dirichlet(y, 10, alpha=0.5, seed=0))
    strategy = fl.FedAvg(clients_per_round=5, local_epochs=s.local_epochs, batch_size=s.batch_size, lr=s.lr)
    _, history = fl.run_federated(lab.model(s), parts, strategy, num_rounds=3, test_data=(X_test, y_test), seed=0)
    assert list(result.accuracy) == history["test_accuracy"]
    assert result.epsilon is None and result.noise_multiplier is None and result.clip_norms is None
    assert result.final_epsilon == math.inf and math.isnan(result.clipped_fraction)
    assert [len(n) for n in result.update_norms] == [5, 5, 5]
    assert result.baseline_accuracy == result.accuracy


def test_recorded_update_norms_are_the_clients_updates():
    X, y = torch.randn(40, 4, generator=torch.Generator().manual_seed(0)), torch.arange(40) % 3
    clients = fl.make_client_data(X, y, [range(0, 10), range(10, 25), range(25, 40)])
    model = fl.LogisticRegression(4, 3)
    theta = fl.get_parameters(model)
    recorder = D._UpdateRecorder(fl.FedAvg(lr=0.5))
    fl.run_federated(model, clients, recorder, num_rounds=1, seed=3)
    engine = fl.VectorisedEngine(model, clients)
    config = fl.FedAvg(lr=0.5).fit_config(1)
    seeds = fl.client_seeds(3, 1, [0, 1, 2])
    results = engine.fit(theta, [(k, {**config, "seed": seeds[k]}) for k in range(3)])
    want = [(fl.parameters_to_vector(res.parameters) - fl.parameters_to_vector(theta)).norm().item()
            for _, res in results]
    assert recorder.norms[1] == pytest.approx(want, rel=1e-6)


def test_a_central_run_spends_what_the_accountant_says_round_by_round(lab):
    s = D.Scenario(mode="central", epsilon=5.0, num_clients=20, clients_per_round=5, num_rounds=4)
    result = lab.run(s)
    z = result.noise_multiplier
    want = [0.0] + [dp.epsilon(noise_multiplier=z, sample_rate=0.25, steps=r, delta=1e-5) for r in range(1, 5)]
    assert result.epsilon == pytest.approx(want, rel=1e-9)
    assert 5.0 * (1 - 2 * dp.NOISE_MULTIPLIER_RTOL) <= result.final_epsilon <= 5.0
    assert result.clip_norms == (1.0,) * 4
    pairs = [(n, c) for norms, c in zip(result.update_norms, result.clip_norms) for n in norms]
    assert result.clipped_fraction == sum(n > c for n, c in pairs) / len(pairs)
    assert result.baseline_accuracy == lab.baseline(s).accuracy


def test_adaptive_clip_moves_and_local_dp_spends_per_client(lab):
    adaptive = lab.run(D.Scenario(mode="adaptive", clip_norm=0.05, epsilon=8.0, num_clients=50, clients_per_round=25,
                                  num_rounds=5))
    assert adaptive.clip_norms[0] == 0.05 and len(set(adaptive.clip_norms)) > 1
    local = lab.run(D.Scenario(mode="local", epsilon=8.0, **SMALL))
    assert local.clip_norms == (1.0,) * 3 and math.isnan(local.clipped_fraction)
    # asked in at most the 3 rounds it was calibrated for: no client exceeds the target
    assert 0 < local.final_epsilon <= 8.0
    assert list(local.epsilon) == sorted(local.epsilon)


def test_caches_hold_baselines_and_noise_but_private_runs_are_re_run(lab):
    s = D.Scenario(mode="central", **SMALL)
    first, second = lab.run(s), lab.run(s)
    assert first is not second and first.accuracy == second.accuracy  # seeded: re-run, same numbers
    assert lab.last is second
    assert lab.baseline(s) is lab.baseline(s.replace(epsilon=2.0, mode="local"))
    assert lab.client_data(s) is lab.client_data(s.replace(mode="none", num_rounds=9))


def test_breast_cancer_is_standardised_and_runs(lab):
    X, y, X_test, _, num_classes = lab.dataset("breast_cancer")
    assert num_classes == 2 and X.shape[1] == 30
    assert X.mean(0).abs().max() < 1e-4 and (X.std(0) - 1).abs().max() < 1e-4
    result = lab.run(D.Scenario(dataset="breast_cancer", mode="central", **SMALL))
    assert len(result.accuracy) == 4 and all(0 <= a <= 1 for a in result.accuracy)


def test_more_clients_than_examples_is_an_error(lab):
    with pytest.raises(ValueError, match="num_clients"):
        lab.run(D.Scenario(num_clients=5000, clients_per_round=5, mode="none"))
    with pytest.raises(ValueError, match="dataset"):
        lab.dataset("mnist")


def test_lab_reports_every_round_to_its_hook():
    seen = []
    lab = D.Lab(on_round=lambda r, n: seen.append((r, n)))
    lab.run(D.Scenario(mode="central", **SMALL))
    assert seen == [(1, 3), (2, 3), (3, 3)] * 2  # the baseline's rounds, then the private run's


def test_book_keeps_the_latest_runs_without_duplicates(lab):
    book = D.ScenarioBook(capacity=2)
    runs = [lab.run(D.Scenario(mode="none", num_clients=k, clients_per_round=5, num_rounds=1)) for k in (10, 20, 30)]
    assert book.add(runs[0]) == 0 and book.add(runs[1]) == 1
    book.add(runs[0])  # saved again: moves to the end, no duplicate
    assert [r.scenario.num_clients for r in book] == [20, 10]
    book.add(runs[2])
    assert [r.scenario.num_clients for r in book] == [10, 30]
    book.clear()
    assert len(book) == 0
    with pytest.raises(ValueError, match="result"):
        book.add("not a result")
    with pytest.raises(ValueError, match="capacity"):
        D.ScenarioBook(capacity=0)


def test_format_table_aligns_numbers_right_and_text_left():
    text = D.format_table(["name", "acc"], [["central", "84.0 %"], ["none", "92.0 %"]])
    assert text.splitlines() == ["name        acc", "central  84.0 %", "none     92.0 %"]
    with pytest.raises(ValueError, match="rows"):
        D.format_table(["a", "b"], [["only one"]])


# ---------------------------------------------------------------- the panel, without a notebook
def _panel(lab, monkeypatch, static=False):
    monkeypatch.setenv(widgets.STATIC_ENV, "1" if static else "0")

    def scenario_of(num_rounds, mode):
        return D.Scenario(mode=mode, num_rounds=num_rounds, num_clients=10, clients_per_round=5)

    def render(num_rounds, mode):
        from dpfl_course import plotting

        result = lab.run(scenario_of(num_rounds, mode))
        fig, ax = plotting.figure(size="small", layout="fixed")
        ax.plot(result.accuracy)
        return fig, f"{mode} {result.final_accuracy:.3f}"

    def compare(results):
        from dpfl_course import plotting

        fig, ax = plotting.figure(size="small", layout="fixed")
        for r in results:
            ax.plot(r.accuracy)
        return fig, D.format_table(["mode", "rounds"], [[r.scenario.mode, r.scenario.num_rounds] for r in results])

    view = widgets.LiveView(render, {"num_rounds": widgets.int_slider("rounds", 2, 1, 3),
                                     "mode": widgets.dropdown("privacy", ["none", "central"], "central")})
    return D.DashboardPanel(view, lab, scenario_of=scenario_of, compare=compare,
                            texts={"saved": "{count} kept", "empty": "nothing yet", "error": "Oops:"})


def test_panel_saves_compares_and_clears(monkeypatch):
    lab = D.Lab()
    panel = _panel(lab, monkeypatch)
    assert panel.table.value == "nothing yet" and panel.comparison.value == b""
    assert panel.save() and len(panel.book) == 1 and panel.message.value == "1 kept"
    first_png = panel.comparison.value
    panel.view.controls["mode"].value = "none"
    assert panel.save() and len(panel.book) == 2
    assert panel.comparison.value != first_png and "none" in panel.table.value and "central" in panel.table.value
    assert panel.save() and len(panel.book) == 2  # the same run again: no duplicate
    assert panel.clear() and len(panel.book) == 0 and panel.table.value == "nothing yet"


def test_panel_shows_progress_then_clears_it(monkeypatch):
    lab = D.Lab()
    panel = _panel(lab, monkeypatch)
    seen = []
    panel.status.observe(lambda change: seen.append(change["new"]), names="value")
    panel.view.controls["num_rounds"].value = 3
    assert "round 1 of 3" in seen and "round 2 of 3" in seen and panel.status.value == ""


def test_panel_button_errors_become_messages(monkeypatch):
    lab = D.Lab()
    panel = _panel(lab, monkeypatch)

    def broken(**values):
        raise ValueError("clients_per_round must be an integer in [1, 10], got 50")

    panel.scenario_of = broken
    assert panel.save() is False  # no exception reaches the caller (the button)
    assert "Oops:" in panel.message.value and "clients_per_round" in panel.message.value
    assert isinstance(panel.last_error, ValueError) and len(panel.book) == 0
    panel.save_button.click()  # the button's own callback: must not raise either
    assert len(panel.book) == 0


def test_panel_static_display_shows_the_view_and_the_saved_runs(monkeypatch, capsys):
    lab = D.Lab()
    panel = _panel(lab, monkeypatch, static=True)
    panel.book.add(lab.run(D.Scenario(mode="none", num_rounds=2, num_clients=10, clients_per_round=5)))
    shown = []
    monkeypatch.setattr(D.plotting, "show", lambda fig, **kw: shown.append(fig))
    panel._ipython_display_()
    out = capsys.readouterr().out
    assert "Static view of the defaults" in out
    # the comparison table's header and its row (mode none, 2 rounds), printed after the view
    assert re.search(r"^mode\s+rounds$", out, re.M) and re.search(r"^none\s+2$", out, re.M)
    assert len(shown) == 1  # the comparison figure was drawn (the view's own image is displayed apart)


def test_a_failed_save_keeps_nothing(monkeypatch):
    lab = D.Lab()
    panel = _panel(lab, monkeypatch)

    def broken(results):
        raise RuntimeError("figure failed")

    panel.compare = broken
    assert panel.save() is False
    assert len(panel.book) == 0 and "figure failed" in panel.message.value


def test_panel_rejects_unknown_texts(monkeypatch):
    monkeypatch.setenv(widgets.STATIC_ENV, "1")
    view = widgets.LiveView(lambda x: __import__("dpfl_course").plotting.figure()[0],
                            {"x": widgets.int_slider("x", 1, 0, 2)})
    with pytest.raises(ValueError, match="texts"):
        D.DashboardPanel(view, D.Lab(), scenario_of=lambda **v: None, compare=lambda r: None, texts={"sve": "x"})
