"""The capstone lab: one DP federated-learning scenario run end to end, and runs kept to compare.

A :class:`Scenario` names every setting of a run: the data and how it is split over the clients,
how many clients train each round and for how many rounds, and the privacy mode —

- ``"none"``: FedAvg, no privacy (the baseline every other mode is drawn against);
- ``"local"``: record-level DP, every client runs DP-SGD on its own data (:class:`fl.LocalDP`);
- ``"central"``: user-level DP-FedAvg, the server clips each client update and adds noise
  (:class:`fl.CentralDP`, McMahan et al. 2018);
- ``"adaptive"``: the same with the clip norm adapted to a quantile of the update norms
  (:class:`fl.AdaptiveCentralDP`, Andrew et al. 2021).

For a private mode the noise multiplier is calibrated to the target ε with
:func:`dpfl_course.dp.noise_multiplier_for` before the run (:func:`calibrate_noise`); the run's
ε after each round is what the strategy's ledger says it spent. A :class:`Lab` runs scenarios
and caches what does not change between two runs of a dashboard (data, splits, noise
multipliers, non-private baselines); a :class:`ScenarioBook` keeps the runs a learner saves.
:class:`DashboardPanel` puts a :class:`~dpfl_course.widgets.LiveView` of a render function
together with a "save" button and a comparison of the saved runs; every word it shows is passed
in by the notebook.

>>> lab = Lab()
>>> result = lab.run(Scenario(mode="none", num_clients=10, clients_per_round=5, num_rounds=2))
>>> len(result.accuracy), result.epsilon is None
(3, True)
"""

from __future__ import annotations

import dataclasses
import functools
import html
import math
from collections.abc import Callable

import torch

from dpfl_course import data, dp, fl, plotting, widgets
from dpfl_course._validate import check_delta, check_epsilon, check_finite, check_int

__all__ = ["MODES", "DATASETS", "PARTITIONS", "Scenario", "ScenarioResult", "Lab", "ScenarioBook",
           "DashboardPanel", "calibrate_noise", "local_dp_accounting", "format_table"]

MODES = ("none", "local", "central", "adaptive")
DATASETS = ("digits", "breast_cancer")
PARTITIONS = ("dirichlet", "quantity", "iid")


def _check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Scenario:
    """Every setting of one dashboard run (hashable: it keys the caches).

    Args:
        dataset: ``"digits"`` or ``"breast_cancer"`` (features standardised with the training
            set's mean and std).
        partition: ``"dirichlet"`` (label skew: each class shared by Dir(``alpha``) proportions),
            ``"quantity"`` (quantity skew: client sizes by Dir(``alpha``) proportions, labels IID)
            or ``"iid"``.
        alpha: Dirichlet concentration > 0 (ignored for ``"iid"``).
        num_clients: clients the training set is split over, >= 2.
        clients_per_round: clients asked each round, in [1, num_clients]; the DP modes sample
            each client independently with probability clients_per_round / num_clients.
        num_rounds: rounds of federated training, >= 1.
        mode: one of :data:`MODES`.
        epsilon: the target ε > 0 of a private mode (ignored for ``"none"``).
        delta: δ in (0, 1).
        clip_norm: the client-update clip norm S (``"central"``), the initial clip norm
            (``"adaptive"``) or the per-example ``max_grad_norm`` C (``"local"``), > 0.
        local_epochs, batch_size, lr: each client's local SGD.
        hidden: width of the MLP's hidden layer.
        seed: seeds the split, the initial model, client sampling and the noise.

    Raises:
        ValueError: naming the setting, for a value out of range.

    >>> Scenario(mode="central", epsilon=2.0).baseline().mode
    'none'
    """

    dataset: str = "digits"
    partition: str = "dirichlet"
    alpha: float = 0.5
    num_clients: int = 100
    clients_per_round: int = 20
    num_rounds: int = 30
    mode: str = "central"
    epsilon: float = 8.0
    delta: float = 1e-5
    clip_norm: float = 1.0
    local_epochs: int = 2
    batch_size: int = 10
    lr: float = 0.3
    hidden: int = 32
    seed: int = 0

    def __post_init__(self):
        # Coerced to plain Python numbers, so that a slider's numpy value and a typed-in one
        # give equal (and equally hashed) scenarios.
        checked = {
            "dataset": _check_choice("dataset", self.dataset, DATASETS),
            "partition": _check_choice("partition", self.partition, PARTITIONS),
            "alpha": check_finite("alpha", self.alpha, low=0, low_open=True),
            "num_clients": check_int("num_clients", self.num_clients, low=2),
            "num_rounds": check_int("num_rounds", self.num_rounds, low=1),
            "mode": _check_choice("mode", self.mode, MODES),
            "epsilon": check_epsilon(self.epsilon),
            "delta": check_delta(self.delta),
            "clip_norm": check_finite("clip_norm", self.clip_norm, low=0, low_open=True),
            "local_epochs": check_int("local_epochs", self.local_epochs, low=1),
            "batch_size": check_int("batch_size", self.batch_size, low=1),
            "lr": check_finite("lr", self.lr, low=0, low_open=True),
            "hidden": check_int("hidden", self.hidden, low=1),
            "seed": check_int("seed", self.seed, low=0, high=2**32 - 1),
        }
        checked["clients_per_round"] = check_int("clients_per_round", self.clients_per_round, low=1,
                                                 high=checked["num_clients"])
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @property
    def private(self) -> bool:
        """True for the DP modes."""
        return self.mode != "none"

    @property
    def sample_rate(self) -> float:
        """The fraction of clients asked each round, clients_per_round / num_clients."""
        return self.clients_per_round / self.num_clients

    def replace(self, **changes) -> "Scenario":
        """A copy with some settings changed (checked again)."""
        return dataclasses.replace(self, **changes)

    def baseline(self) -> "Scenario":
        """The non-private run with the same data, split, clients and rounds.

        The privacy settings are reset to their defaults, so every private scenario of one
        setting shares one baseline (and one cache entry).
        """
        defaults = {f.name: f.default for f in dataclasses.fields(Scenario)
                    if f.name in ("epsilon", "delta", "clip_norm")}
        return self.replace(mode="none", **defaults)


@dataclasses.dataclass(frozen=True, eq=False)
class ScenarioResult:
    """What one run produced, per round (index 0 is the initial model, before any round).

    Attributes:
        scenario: the settings.
        accuracy: test accuracy (a fraction) after each round, length num_rounds + 1.
        epsilon: ε spent after each round (0 at round 0), or None for ``"none"``. For
            ``"local"`` it is the largest ε of any client so far (record-level DP); for the
            central modes the user-level ε of the server's ledger.
        noise_multiplier: the calibrated noise multiplier (None for ``"none"``).
        update_norms: for rounds 1..num_rounds, the L2 norms of the clients' updates
            θ_k − θ_global as they reached the server (before any server-side clipping).
        clip_norms: the clip norm in force in each round 1..num_rounds: the client-update clip
            S (central; the adapted one for adaptive) or the per-example C (local); None for
            ``"none"``.
        baseline_accuracy: the non-private run's accuracy per round (equal to ``accuracy`` for
            ``"none"``).
    """

    scenario: Scenario
    accuracy: tuple[float, ...]
    epsilon: tuple[float, ...] | None
    noise_multiplier: float | None
    update_norms: tuple[tuple[float, ...], ...]
    clip_norms: tuple[float, ...] | None
    baseline_accuracy: tuple[float, ...]

    @property
    def final_accuracy(self) -> float:
        return self.accuracy[-1]

    @property
    def final_epsilon(self) -> float:
        """ε spent by the whole run (inf for ``"none"``: no guarantee at all)."""
        return math.inf if self.epsilon is None else self.epsilon[-1]

    @property
    def clipped_fraction(self) -> float:
        """The fraction of client updates whose norm exceeded the clip norm of their round (central
        modes; NaN otherwise or when no update arrived)."""
        if self.scenario.mode not in ("central", "adaptive"):
            return math.nan
        pairs = [(n, c) for norms, c in zip(self.update_norms, self.clip_norms) for n in norms]
        return sum(n > c for n, c in pairs) / len(pairs) if pairs else math.nan


def local_dp_accounting(num_examples: int, *, batch_size: int, local_epochs: int, num_rounds: int) -> tuple[float, int]:
    """The (sample_rate, steps) a client's accountant needs if it trains with DP-SGD in every round.

    One round is :func:`fl.local_dp_plan` (Poisson sampling at rate min(1, batch_size / n_k),
    ceil(n_k / batch_size) steps per epoch), as :class:`fl.LocalDP` trains; a client asked in
    every round takes num_rounds times those steps. (Not the source article's q = 1 / num_clients
    and steps = num_clients × epochs.)

    >>> local_dp_accounting(25, batch_size=10, local_epochs=1, num_rounds=30)
    (0.4, 90)
    """
    r = check_int("num_rounds", num_rounds, low=1)
    q, steps = fl.local_dp_plan(num_examples, local_epochs=local_epochs, batch_size=batch_size)
    return q, r * steps


def _local_worst_runs(sizes, batch_size, local_epochs, num_rounds) -> list[tuple[float, int]]:
    """The (sample_rate, steps) runs among which the worst client's is, largest rate first.

    Clients with the same number of steps differ only in their sample rate b / n_k, and ε grows
    with the sample rate: within a group of equal steps the smallest client is the worst. Across
    groups it depends: 3 examples at batch size 10 is one step at rate 1 per epoch, 11 examples
    two steps at rate 0.91, which spend more.
    """
    worst: dict[int, float] = {}
    for n in sorted(sizes):  # smallest first: the first client of each steps-group has its largest rate
        q, steps = local_dp_accounting(n, batch_size=batch_size, local_epochs=local_epochs, num_rounds=num_rounds)
        worst.setdefault(steps, q)
    return sorted(((q, steps) for steps, q in worst.items()), reverse=True)


@functools.lru_cache(maxsize=512)
def _calibrate(mode, epsilon, delta, sample_rate, num_rounds, sizes, batch_size, local_epochs) -> float:
    if mode in ("central", "adaptive"):
        return dp.noise_multiplier_for(target_epsilon=epsilon, sample_rate=sample_rate, steps=num_rounds,
                                       delta=delta)
    # Local DP: one noise multiplier for every client, large enough for the client that would
    # spend the most if it were asked in every round (record-level DP gets no credit for client
    # sampling here). Calibrate on one candidate, then check every other with one ε evaluation,
    # calibrating again on any that would overspend: the result holds for every client, at the
    # cost of a few calibrations (each cached by noise_multiplier_for).
    runs = _local_worst_runs(sizes, batch_size, local_epochs, num_rounds)
    z = 0.0
    for q, steps in runs:
        if z == 0.0 or dp.epsilon(noise_multiplier=z, sample_rate=q, steps=steps, delta=delta) > epsilon:
            z = max(z, dp.noise_multiplier_for(target_epsilon=epsilon, sample_rate=q, steps=steps, delta=delta))
    return z


def calibrate_noise(scenario: Scenario, client_sizes) -> float | None:
    """The noise multiplier that makes ``scenario`` spend at most its target ε (RDP accountant).

    Central and adaptive modes: user-level, sample rate clients_per_round / num_clients, one step
    per round. Local mode: record-level, the largest noise multiplier any client needs if it is
    asked in every round (see :func:`local_dp_accounting`). None for ``"none"``. Cached.

    Args:
        scenario: the settings.
        client_sizes: the number of training examples of each client.

    >>> round(calibrate_noise(Scenario(mode="central", epsilon=8.0), [13] * 100), 3)
    1.065
    """
    if not isinstance(scenario, Scenario):
        raise ValueError(f"scenario must be a Scenario, got {type(scenario).__name__}")
    if not scenario.private:
        return None
    sizes = tuple(sorted({check_int("client size", n, low=1) for n in client_sizes}))
    if not sizes:
        raise ValueError("client_sizes must name at least one client")
    return _calibrate(scenario.mode, scenario.epsilon, scenario.delta, scenario.sample_rate, scenario.num_rounds,
                      sizes if scenario.mode == "local" else (), scenario.batch_size, scenario.local_epochs)


class _UpdateRecorder(fl.StrategyWrapper):
    """Wraps a strategy to record the norms of the client updates that reach the server.

    Outermost, so that it sees every mode's results before any server-side clipping.
    """

    def __init__(self, strategy):
        super().__init__(strategy)
        self.norms: dict[int, list[float]] = {}
        self._global = None

    def configure_fit(self, server_round, parameters, num_clients, generator):
        self._global = fl.parameters_to_vector(parameters)
        return self.strategy.configure_fit(server_round, parameters, num_clients, generator)

    def aggregate_fit(self, server_round, results, failures):
        norms = []
        if results:
            updates = torch.stack([fl.parameters_to_vector(res.parameters) for _, res in results])
            norms = (updates - self._global).norm(dim=1).tolist()
        self.norms[server_round] = norms
        return self.strategy.aggregate_fit(server_round, results, failures)


class Lab:
    """Runs :class:`Scenario` objects, caching what two runs of one dashboard share.

    Cached: the datasets, the splits and client data, the calibrated noise multipliers and the
    non-private baselines (keyed by :meth:`Scenario.baseline`). A private run itself is never
    cached: moving a control re-runs it. The last result is kept in :attr:`last`.

    Args:
        on_round: optional ``on_round(server_round, num_rounds)``, called after every round of a
            run (a panel uses it for a progress line); it must not print.

    >>> lab = Lab()
    >>> lab.client_sizes(Scenario(num_clients=10, clients_per_round=5, partition="iid"))[:3]
    [135, 135, 135]
    """

    def __init__(self, *, on_round: Callable[[int, int], None] | None = None):
        self.on_round = on_round
        self.last: ScenarioResult | None = None
        self._datasets: dict = {}
        self._clients: dict = {}
        self._baselines: dict = {}

    def dataset(self, name: str):
        """The dataset ``name`` (train and test tensors; breast cancer's features standardised)."""
        _check_choice("dataset", name, DATASETS)
        if name not in self._datasets:
            if name == "digits":
                d = data.load_digits()
                X_train, X_test = d.X_train, d.X_test
            else:
                d = data.load_breast_cancer()
                # Raw units (areas in the thousands) would need a tiny learning rate; standardise
                # with the training set's statistics (assumed public here, a simplification).
                mean, std = d.X_train.mean(0), d.X_train.std(0).clamp(min=1e-6)
                X_train, X_test = (d.X_train - mean) / std, (d.X_test - mean) / std
            self._datasets[name] = (X_train, d.y_train, X_test, d.y_test, d.num_classes)
        return self._datasets[name]

    def client_data(self, scenario: Scenario) -> list:
        """The clients' ``(X, y)`` pairs of ``scenario``'s split (cached)."""
        key = (scenario.dataset, scenario.partition, None if scenario.partition == "iid" else scenario.alpha,
               scenario.num_clients, scenario.seed)
        if key not in self._clients:
            X, y, *_ = self.dataset(scenario.dataset)
            if scenario.num_clients > len(X):
                raise ValueError(f"num_clients must be at most the {len(X)} training examples, "
                                 f"got {scenario.num_clients}")
            if scenario.partition == "iid":
                parts = data.partition_iid(y, scenario.num_clients, seed=scenario.seed)
            elif scenario.partition == "quantity":
                parts = data.partition_quantity_skew(y, scenario.num_clients, alpha=scenario.alpha, seed=scenario.seed)
            else:
                parts = data.partition_dirichlet(y, scenario.num_clients, alpha=scenario.alpha, seed=scenario.seed)
            self._clients[key] = fl.make_client_data(X, y, parts)
        return self._clients[key]

    def client_sizes(self, scenario: Scenario) -> list[int]:
        """How many training examples each client of ``scenario`` holds."""
        return [len(y) for _, y in self.client_data(scenario)]

    def noise_multiplier(self, scenario: Scenario) -> float | None:
        """:func:`calibrate_noise` for ``scenario``'s clients (cached)."""
        return calibrate_noise(scenario, self.client_sizes(scenario))

    def model(self, scenario: Scenario):
        """A fresh MLP for ``scenario``'s data, initialised from its seed."""
        X, _, _, _, num_classes = self.dataset(scenario.dataset)
        return fl.MLP(X.shape[1], scenario.hidden, num_classes, generator=torch.Generator().manual_seed(scenario.seed))

    def strategy(self, scenario: Scenario, noise_multiplier: float | None = None):
        """The server strategy of ``scenario``: FedAvg, wrapped in its DP mode's wrapper."""
        fedavg = fl.FedAvg(clients_per_round=scenario.clients_per_round, local_epochs=scenario.local_epochs,
                           batch_size=scenario.batch_size, lr=scenario.lr)
        if not scenario.private:
            return fedavg
        z = self.noise_multiplier(scenario) if noise_multiplier is None else noise_multiplier
        if scenario.mode == "local":
            return fl.LocalDP(fedavg, noise_multiplier=z, max_grad_norm=scenario.clip_norm, delta=scenario.delta)
        if scenario.mode == "central":
            return fl.CentralDP(fedavg, noise_multiplier=z, clip_norm=scenario.clip_norm, delta=scenario.delta,
                                seed=scenario.seed)
        return fl.AdaptiveCentralDP(fedavg, noise_multiplier=z, initial_clip_norm=scenario.clip_norm,
                                    delta=scenario.delta, seed=scenario.seed)

    def _train(self, scenario: Scenario):
        X_train, _, X_test, y_test, _ = self.dataset(scenario.dataset)
        clients = self.client_data(scenario)
        z = self.noise_multiplier(scenario)
        recorder = _UpdateRecorder(self.strategy(scenario, z))
        hook = None
        if self.on_round is not None:
            hook = lambda server_round, parameters, row: self.on_round(server_round, scenario.num_rounds)  # noqa: E731
        _, history = fl.run_federated(self.model(scenario), clients, recorder, num_rounds=scenario.num_rounds,
                                      test_data=(X_test, y_test), seed=scenario.seed, on_round=hook)
        return history, recorder.norms, z

    def baseline(self, scenario: Scenario) -> ScenarioResult:
        """The non-private run of ``scenario``'s setting (cached)."""
        key = scenario.baseline()
        if key not in self._baselines:
            history, norms, _ = self._train(key)
            accuracy = tuple(history["test_accuracy"])
            self._baselines[key] = ScenarioResult(
                scenario=key, accuracy=accuracy, epsilon=None, noise_multiplier=None,
                update_norms=tuple(tuple(norms.get(r, ())) for r in range(1, key.num_rounds + 1)),
                clip_norms=None, baseline_accuracy=accuracy)
        return self._baselines[key]

    def run(self, scenario: Scenario | None = None, **settings) -> ScenarioResult:
        """Run ``scenario`` (or ``Scenario(**settings)``); the baseline comes from the cache.

        Raises:
            ValueError: for settings out of range (named).
        """
        if scenario is None:
            scenario = Scenario(**settings)
        elif settings:
            scenario = scenario.replace(**settings)
        if not isinstance(scenario, Scenario):
            raise ValueError(f"scenario must be a Scenario, got {type(scenario).__name__}")
        baseline = self.baseline(scenario)
        if not scenario.private:
            result = dataclasses.replace(baseline, scenario=scenario)
        else:
            history, norms, z = self._train(scenario)
            epsilon = [0.0] + [float(e) for e in history["epsilon"][1:]]
            if scenario.mode == "local":
                clips = [scenario.clip_norm] * scenario.num_rounds
            else:
                clips = [float(c) for c in history["clip_norm"][1:]]
            result = ScenarioResult(
                scenario=scenario, accuracy=tuple(history["test_accuracy"]), epsilon=tuple(epsilon),
                noise_multiplier=z,
                update_norms=tuple(tuple(norms.get(r, ())) for r in range(1, scenario.num_rounds + 1)),
                clip_norms=tuple(clips), baseline_accuracy=baseline.accuracy)
        self.last = result
        return result


class ScenarioBook:
    """The runs a learner saved, in order, at most ``capacity`` (the oldest is dropped).

    Saving a run of a scenario already in the book replaces it (no duplicates).

    >>> book = ScenarioBook(capacity=2)
    >>> lab = Lab()
    >>> for k in (10, 20, 10):
    ...     _ = book.add(lab.run(mode="none", num_clients=k, clients_per_round=5, num_rounds=1))
    >>> [r.scenario.num_clients for r in book]
    [20, 10]
    """

    def __init__(self, *, capacity: int = 6):
        self.capacity = check_int("capacity", capacity, low=1)
        self.results: list[ScenarioResult] = []

    def add(self, result: ScenarioResult) -> int:
        """Save ``result``; return its position (0-based) in the book."""
        if not isinstance(result, ScenarioResult):
            raise ValueError(f"result must be a ScenarioResult, got {type(result).__name__}")
        self.results = [r for r in self.results if r.scenario != result.scenario]
        self.results.append(result)
        del self.results[:-self.capacity]
        return len(self.results) - 1

    def clear(self) -> None:
        self.results = []

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self):
        return iter(self.results)


def format_table(headers, rows) -> str:
    """Rows of cells as an aligned plain-text table (numbers right-aligned, text left-aligned).

    >>> print(format_table(["mode", "ε"], [["central", "8.00"], ["none", "inf"]]))
    mode        ε
    central  8.00
    none      inf
    """
    headers = [str(h) for h in headers]
    cells = [[str(c) for c in row] for row in rows]
    if any(len(row) != len(headers) for row in cells):
        raise ValueError(f"rows must have {len(headers)} cells each, like headers")

    def numeric(text):
        try:
            float(text.rstrip(" %"))
            return True
        except ValueError:
            return text in ("–", "-", "inf", "∞")

    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    right = [bool(cells) and all(numeric(r[i]) for r in cells) for i in range(len(headers))]

    def line(row):
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right)).rstrip()

    return "\n".join([line(headers)] + [line(r) for r in cells])


class DashboardPanel:
    """A live view of a scenario, a button that saves the current run and a comparison of the saved runs.

    Args:
        view: a :class:`~dpfl_course.widgets.LiveView` whose render function runs ``lab``.
        lab: the :class:`Lab` the render function uses (its :attr:`Lab.last` is what is saved).
        scenario_of: maps the view's control values to the :class:`Scenario` they run.
        compare: ``compare(results) -> (Figure, str)`` draws saved runs side by side (the str, a
            table, is shown under the figure).
        book: where saved runs go (a new :class:`ScenarioBook` by default).
        texts: the words shown, by key: ``"save"``, ``"clear"`` (button labels), ``"saved"``
            (after a save; ``{count}`` is filled in), ``"empty"`` (no saved run yet),
            ``"error"`` (before an error's message), ``"progress"`` (``{round}`` and ``{rounds}``),
            ``"done"`` (after a run).
        dpi: resolution of the comparison image.

    A button never raises into the page: errors are shown in the panel's message line. With
    ``DPFL_STATIC_WIDGETS=1`` the panel displays the view's static render and, when runs are
    saved, their comparison.
    """

    TEXTS = {"save": "Save scenario", "clear": "Clear saved", "saved": "{count} saved",
             "empty": "No saved scenario yet.", "error": "Cannot do this:", "progress": "round {round} of {rounds}",
             "done": ""}

    def __init__(self, view, lab: Lab, *, scenario_of: Callable[..., Scenario],
                 compare: Callable[[list], tuple], book: ScenarioBook | None = None,
                 texts: dict | None = None, dpi: int = 90):
        import ipywidgets as W

        unknown = set(texts or {}) - set(self.TEXTS)
        if unknown:
            raise ValueError(f"texts must use the keys {sorted(self.TEXTS)}, got {sorted(unknown)}")
        self.view, self.lab, self.scenario_of, self.compare = view, lab, scenario_of, compare
        self.book = ScenarioBook() if book is None else book
        self.texts = {**self.TEXTS, **(texts or {})}
        self.dpi = dpi
        self.last_error: Exception | None = None
        self.status = W.HTML()
        self.message = W.HTML()
        self.comparison = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self.table = W.HTML()
        self.save_button = W.Button(description=self.texts["save"], button_style="primary",
                                    layout=W.Layout(width="160px"))
        self.clear_button = W.Button(description=self.texts["clear"], layout=W.Layout(width="160px"))
        self.save_button.on_click(lambda _: self.save())
        self.clear_button.on_click(lambda _: self.clear())
        lab.on_round = self._progress
        self._show_comparison()

    def _progress(self, server_round: int, num_rounds: int) -> None:
        text = (self.texts["progress"].format(round=server_round, rounds=num_rounds)
                if server_round < num_rounds else self.texts["done"])
        self.status.value = html.escape(text)

    def _error(self, error: Exception) -> None:
        self.last_error = error
        self.message.value = (f'<span style="color:#B2182B"><b>{html.escape(self.texts["error"])}</b> '
                              f"{html.escape(str(error))}</span>")

    def current(self) -> ScenarioResult:
        """The result for the controls' current values (the view's last run, or a new run)."""
        scenario = self.scenario_of(**self.view.values())
        last = self.lab.last
        return last if last is not None and last.scenario == scenario else self.lab.run(scenario)

    def save(self) -> bool:
        """Save the current run and redraw the comparison; True on success (errors go to the panel)."""
        before = list(self.book.results)
        try:
            self.book.add(self.current())
            self._show_comparison()
        except Exception as error:  # a button never shows a traceback
            self.book.results = before  # a failed save keeps nothing: book, figure and table agree
            self._error(error)
            return False
        self.last_error = None
        self.message.value = html.escape(self.texts["saved"].format(count=len(self.book)))
        return True

    def clear(self) -> bool:
        """Forget every saved run; True on success."""
        try:
            self.book.clear()
            self._show_comparison()
        except Exception as error:
            self._error(error)
            return False
        self.last_error = None
        self.message.value = ""
        return True

    def _show_comparison(self) -> None:
        if not len(self.book):
            self.comparison.value = b""
            self.comparison.layout.display = "none"
            self.table.value = html.escape(self.texts["empty"])
            return
        fig, text = self.compare(list(self.book))
        self.comparison.value = plotting.to_png(fig, dpi=self.dpi)
        self.comparison.layout.display = None
        self.table.value = f"<pre style='margin:0'>{html.escape(text)}</pre>"

    @property
    def widget(self):
        """The whole panel as one ipywidgets box."""
        import ipywidgets as W

        controls = W.Box(list(self.view.controls.values()), layout=W.Layout(display="flex", flex_flow="row wrap"))
        buttons = W.HBox([self.save_button, self.clear_button, self.message])
        return W.VBox([controls, self.status, self.view.image, self.view.summary, buttons, self.comparison, self.table])

    def _ipython_display_(self):
        from IPython.display import display

        if not widgets.static_mode():
            display(self.widget)
            return
        self.view._ipython_display_()  # the static render of the defaults, with its note
        if len(self.book):
            fig, text = self.compare(list(self.book))
            plotting.show(fig, dpi=self.dpi)
            print(text)
