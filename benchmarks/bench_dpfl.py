"""DP federated learning benchmarks: notebook 08's dashboard re-run time at its default, a
dashboard-like re-run per DP mode and model, the engines' speed-up
with DP on, the cost of the ε bookkeeping, and a utility table (accuracy vs ε) on digits and MNIST.

Run with ``.venv/bin/python benchmarks/bench_dpfl.py`` (OMP_NUM_THREADS=1 is set here); about
2 minutes of CPU time on a 2-core machine (5-6 minutes of wall time when the machine is shared),
of which the MNIST rows take about half (``--no-mnist`` skips them, ``--speed-only`` /
``--utility-only`` run one part). Every number is measured in this run on this
machine; on a shared machine the timings move by tens of %. Real MNIST rows need the t10k files in
``../shared/datasets/mnist-t10k`` (or ``DPFL_MNIST_T10K_DIR``): an 8,000/2,000 split of those
10,000 images; they are skipped when the folder is absent.

Modes: ``none`` (FedAvg), ``local`` (:class:`~dpfl_course.fl.LocalDP`: DP-SGD in every client,
record-level ε of the worst client), ``central`` (:class:`~dpfl_course.fl.CentralDP`: DP-FedAvg,
user-level ε) and ``adaptive`` (:class:`~dpfl_course.fl.AdaptiveCentralDP`). Noise multipliers
are calibrated to the target ε with ``dp.noise_multiplier_for`` (δ = 1e-5): for central DP with
q = clients per round / N and steps = rounds; for local DP on the smallest client (the one with
the largest ε) as if it trained every round.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402

from dpfl_course import data, dp, fl  # noqa: E402
from dpfl_course.testing import ms, print_table as table  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

ROOT = Path(__file__).resolve().parents[1]
T10K = Path(os.environ.get("DPFL_MNIST_T10K_DIR", ROOT.parent / "shared" / "datasets" / "mnist-t10k"))
DELTA = 1e-5
MODES = ("none", "local", "central", "adaptive")


# ---------------------------------------------------------------------------------------- set-ups
def digits():
    ds = data.load_digits()
    return ds.X_train, ds.y_train, ds.X_test, ds.y_test


def mnist_t10k():
    """An 8,000/2,000 split (seeded, stratified by nothing) of the real MNIST test images."""
    X = torch.from_numpy(data.read_idx(T10K / "t10k-images-idx3-ubyte.gz").reshape(-1, 784)).float() / 255.0
    y = torch.from_numpy(data.read_idx(T10K / "t10k-labels-idx1-ubyte.gz")).long()
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
    train, test = order[:8000], order[8000:]
    return X[train], y[train], X[test], y[test]


def clients_of(X, y, num_clients, *, alpha=None, seed=0):
    parts = (data.partition_iid(y, num_clients, seed=seed) if alpha is None
             else data.partition_dirichlet(y, num_clients, alpha=alpha, seed=seed))
    return fl.make_client_data(X, y, parts)


def local_sigma(clients, *, epsilon, batch_size, local_epochs, num_rounds):
    """σ whose worst (smallest) client spends at most ``epsilon`` if it trains in every round."""
    n = min(len(X) for X, _ in clients)
    q, steps = fl.local_dp_plan(n, local_epochs=local_epochs, batch_size=batch_size)
    return dp.noise_multiplier_for(target_epsilon=epsilon, sample_rate=q, steps=steps * num_rounds, delta=DELTA)


def strategy_for(mode, base, *, clients, epsilon, num_rounds, clip=1.0, sigma=None):
    """The DP wrapper of ``mode`` around ``base``, σ calibrated to ``epsilon`` unless given."""
    if mode == "none":
        return base
    if mode == "local":
        if sigma is None:
            sigma = local_sigma(clients, epsilon=epsilon, batch_size=base.batch_size, local_epochs=base.local_epochs,
                                num_rounds=num_rounds)
        return fl.LocalDP(base, noise_multiplier=sigma, max_grad_norm=clip, delta=DELTA)
    if sigma is None:
        q = base.num_fit_clients(len(clients)) / len(clients)
        sigma = dp.noise_multiplier_for(target_epsilon=epsilon, sample_rate=q, steps=num_rounds, delta=DELTA)
    if mode == "central":
        return fl.CentralDP(base, noise_multiplier=sigma, clip_norm=clip, delta=DELTA)
    return fl.AdaptiveCentralDP(base, noise_multiplier=sigma, initial_clip_norm=clip, delta=DELTA)


# ---------------------------------------------------------------------------------------- (a) speed
DASHBOARD = {"num_clients": 50, "clients_per_round": 10, "num_rounds": 30, "local_epochs": 1, "batch_size": 10,
             "lr": 0.1, "epsilon": 4.0, "clip": 1.0}
MODELS = {"logreg 64->10": lambda: fl.LogisticRegression(64, 10), "MLP 64->128->10": lambda: fl.MLP(64, 128, 10)}


def capstone_default(repeats=7):
    """Notebook 08's own dashboard at its default settings (``dashboard.Scenario()``), per mode.

    ``dashboard.Lab`` is what the notebook's panel calls on every slider move: it caches data,
    splits, noise multipliers and the non-private baseline, never a private run. "re-run" is the
    median of ``repeats`` runs with new seeds after a warm-up (the slider moves of a session);
    "new ε" moves ε every time (a σ never seen: the accountant's cold path). The figure's PNG
    adds about 0.1 s on top (bench_widgets.py measures the whole view).
    """
    from dpfl_course import dashboard

    lab = dashboard.Lab()
    default = dashboard.Scenario()
    rows = []
    for mode in dashboard.MODES:
        lab.run(default.replace(mode=mode))  # warm-up: data, split, baseline, σ
        same, new, accuracy = [], [], []
        for r in range(repeats):
            t = time.perf_counter()
            result = lab.run(default.replace(mode=mode, seed=r + 1))
            same.append(time.perf_counter() - t)
            accuracy.append(100 * result.final_accuracy)
            if mode != "none":
                t = time.perf_counter()
                lab.run(default.replace(mode=mode, epsilon=default.epsilon * (1.01 + 0.013 * r + 0.003 * len(rows))))
                new.append(time.perf_counter() - t)
        rows.append((mode, ms(statistics.median(same), 0), ms(max(same), 0),
                     ms(statistics.median(new), 0) if new else "-", f"{statistics.median(accuracy):.1f}"))
    table(f"(a0) Notebook 08's dashboard at its default ({default.dataset}, {default.partition} α = {default.alpha:g}, "
          f"{default.num_clients} clients, {default.clients_per_round} per round, {default.num_rounds} rounds, "
          f"ε = {default.epsilon:g}, clip {default.clip_norm:g}, MLP 64->{default.hidden}->10); median of {repeats} "
          "re-runs with new seeds (target: <= 1000 ms)", rows,
          ["mode", "re-run ms (median)", "re-run ms (max)", "new ε ms (median)", "accuracy % (median)"])


def dashboard_rerun(repeats=7):
    """The dashboard's re-run: a whole DP-FL simulation with test accuracy every round, per mode.

    "same ε" re-runs with the same σ (the accountant's caches are warm, e.g. moving the rounds or
    clip slider); "new ε" moves the ε slider every time: σ is re-calibrated (noise_multiplier_for)
    and the accountant meets a new σ, which is the slowest slider move.
    """
    X, y, X_test, y_test = digits()
    c = DASHBOARD
    rows = []
    for partition, alpha in (("IID", None), ("Dirichlet 0.5", 0.5)):
        clients = clients_of(X, y, c["num_clients"], alpha=alpha)
        for model_name, make_model in MODELS.items():
            for mode in MODES:
                def run(epsilon, seed=0):
                    base = fl.FedAvg(clients_per_round=c["clients_per_round"], local_epochs=c["local_epochs"],
                                     batch_size=c["batch_size"], lr=c["lr"])
                    strategy = strategy_for(mode, base, clients=clients, epsilon=epsilon, num_rounds=c["num_rounds"],
                                            clip=c["clip"])
                    return fl.run_federated(make_model(), clients, strategy, num_rounds=c["num_rounds"],
                                            test_data=(X_test, y_test), seed=seed)[1]

                run(c["epsilon"])  # warm-up
                same, new, accuracy = [], [], []
                for r in range(repeats):
                    t = time.perf_counter()
                    history = run(c["epsilon"], seed=r)
                    same.append(time.perf_counter() - t)
                    accuracy.append(100 * history.last("test_accuracy"))
                    if mode != "none":
                        t = time.perf_counter()
                        run(c["epsilon"] * (1.01 + 0.013 * r + 0.001 * len(rows)))  # an ε (so a σ) never seen
                        new.append(time.perf_counter() - t)
                rows.append((partition, model_name, mode, ms(statistics.median(same), 0),
                             ms(statistics.median(new), 0) if new else "-", ms(max(new), 0) if new else "-",
                             f"{statistics.median(accuracy):.1f}"))
    table(f"(a) Dashboard re-run on digits: {c['num_clients']} clients, {c['clients_per_round']} per round, "
          f"{c['num_rounds']} rounds, 1 local epoch, batch {c['batch_size']}, lr {c['lr']}, ε = {c['epsilon']:g} "
          f"(δ = 1e-5), clip 1, test accuracy every round; vectorised engine; median of {repeats} runs "
          "(target: <= 1000 ms)", rows,
          ["partition", "model", "mode", "same ε ms", "new ε ms (median)", "new ε ms (max)", "accuracy %"])


def engine_speedup(repeats=3, num_rounds=10):
    """Sequential vs vectorised engine with DP on (dashboard settings, 10 rounds)."""
    X, y, X_test, y_test = digits()
    c = DASHBOARD
    clients = clients_of(X, y, c["num_clients"])
    rows = []
    for model_name, make_model in MODELS.items():
        for mode in MODES:
            base = lambda: fl.FedAvg(clients_per_round=c["clients_per_round"], local_epochs=c["local_epochs"],
                                     batch_size=c["batch_size"], lr=c["lr"])
            sigma = 1.0  # fixed: the accountant's cost is the same for both engines and not what is timed
            times = {"sequential": [], "vectorised": []}
            params = {}
            for r in range(repeats + 1):
                for engine in times:
                    strategy = strategy_for(mode, base(), clients=clients, epsilon=None, num_rounds=num_rounds,
                                            sigma=sigma)
                    t = time.perf_counter()
                    params[engine], _ = fl.run_federated(make_model(), clients, strategy, num_rounds=num_rounds,
                                                         engine=engine, seed=r)
                    if r:
                        times[engine].append(time.perf_counter() - t)
            gap = (fl.parameters_to_vector(params["sequential"]) - fl.parameters_to_vector(params["vectorised"]))
            seq, vec = statistics.median(times["sequential"]), statistics.median(times["vectorised"])
            rows.append((model_name, mode, ms(seq / num_rounds), ms(vec / num_rounds), f"{seq / vec:.1f}x",
                         f"{gap.abs().max().item():.1e}"))
    table(f"(a') Engines with DP on: ms per round at the dashboard settings ({c['clients_per_round']} of "
          f"{c['num_clients']} clients), median of {repeats} runs of {num_rounds} rounds; last column: largest "
          "difference between the two engines' final models", rows,
          ["model", "mode", "sequential ms/round", "vectorised ms/round", "speed-up", "max |Δθ|"])


def accounting_cost(repeats=5, num_rounds=30):
    """ε bookkeeping of a run, with a σ never seen before (cold caches) each time.

    Local DP: every client's ledger charged every round and the max taken (the direct way) vs
    LocalDP's bounded maximum. Central DP: the server ledger, one spend per round, vs one
    dp.epsilon_curve call. Both give the same numbers (tested); this is their cost.
    """
    X, y, _, _ = digits()
    rows = []

    class Null(fl.Strategy):
        def aggregate_fit(self, server_round, results, failures):
            return None, {}

    for partition, alpha in (("IID", None), ("Dirichlet 0.5", 0.5)):
        clients = clients_of(X, y, 50, alpha=alpha)
        sizes = [len(X_k) for X_k, _ in clients]
        # Who trains in each round (10 of 50, as the dashboard), and what each reports.
        g = torch.Generator().manual_seed(0)
        rounds = [fl.sample_clients(50, 10, g) for _ in range(num_rounds)]
        direct, ours = [], []
        for r in range(repeats):
            sigma = 0.9 + 0.0137 * r + (0.5 if alpha else 0.0)
            t = time.perf_counter()
            ledgers = {}
            for server_round, chosen in enumerate(rounds, start=1):
                for cid in chosen:
                    q, steps = fl.local_dp_plan(sizes[cid], local_epochs=1, batch_size=10)
                    ledger = ledgers.setdefault(cid, dp.PrivacyLedger(delta=DELTA))
                    ledger.spend_gaussian(f"round {server_round}", noise_multiplier=sigma, sample_rate=q, steps=steps)
                max(ledger.epsilon for ledger in ledgers.values())
            direct.append(time.perf_counter() - t)
            sigma += 0.003  # cold again for the second way
            strategy = fl.LocalDP(Null(), noise_multiplier=sigma, max_grad_norm=1.0)
            t = time.perf_counter()
            for server_round, chosen in enumerate(rounds, start=1):
                results = []
                for cid in chosen:
                    q, steps = fl.local_dp_plan(sizes[cid], local_epochs=1, batch_size=10)
                    results.append((cid, fl.FitRes([], sizes[cid], {"dp_steps": steps, "dp_sample_rate": q})))
                strategy.aggregate_fit(server_round, results, [])
            ours.append(time.perf_counter() - t)
        distinct = len({fl.local_dp_plan(n, local_epochs=1, batch_size=10) for n in sizes})
        rows.append((f"local DP, {partition} ({distinct} client sizes)", "ledger per client per round",
                     ms(statistics.median(direct), 0), "LocalDP (bounded max)", ms(statistics.median(ours), 0)))
    direct, ours = [], []
    for r in range(repeats):
        sigma = 0.95 + 0.0173 * r
        ledger = dp.PrivacyLedger(delta=DELTA)
        t = time.perf_counter()
        per_round = []
        for server_round in range(1, num_rounds + 1):
            ledger.spend_gaussian(f"round {server_round}", noise_multiplier=sigma, sample_rate=0.2, steps=1)
            per_round.append(ledger.epsilon)
        direct.append(time.perf_counter() - t)
        t = time.perf_counter()
        curve = dp.epsilon_curve(noise_multiplier=sigma + 0.005, sample_rate=0.2, steps=num_rounds, delta=DELTA)
        ours.append(time.perf_counter() - t)
        assert len(curve) == len(per_round)
    rows.append(("central DP (q = 0.2)", "ledger, one spend per round", ms(statistics.median(direct), 0),
                 "dp.epsilon_curve", ms(statistics.median(ours), 0)))
    table(f"(a'') ε bookkeeping of a {num_rounds}-round run with a new σ each time (cold caches), 50 clients, "
          f"10 per round, batch 10 on digits; median of {repeats}", rows,
          ["run", "direct way", "ms", "package way", "ms"])


# ---------------------------------------------------------------------------------------- (b) utility
EPSILONS = (1.0, 2.0, 4.0, 8.0)
# One setting per mode, chosen by a light search on digits (three clips / learning rates each),
# used unchanged on MNIST. Central DP samples half the clients: q = 0.5.
LOCAL = {"local_epochs": 1, "batch_size": 16, "lr": 0.3, "clip": 1.0, "num_rounds": 30}
CENTRAL = {"local_epochs": 2, "batch_size": 10, "lr": 0.3, "clip": 0.5, "num_rounds": 30}


def utility(include_mnist=True):
    datasets = {"digits": digits}
    if include_mnist and T10K.is_dir():
        datasets["MNIST 8k/2k"] = mnist_t10k
    rows = []
    for name, load in datasets.items():
        X, y, X_test, y_test = load()
        num_features = X.shape[1]
        for num_clients in (10, 100):
            clients = clients_of(X, y, num_clients)
            for mode, settings, per_round in (("local", LOCAL, num_clients), ("central", CENTRAL, num_clients // 2),
                                              ("adaptive", CENTRAL, num_clients // 2)):
                def run(epsilon):
                    base = fl.FedAvg(clients_per_round=per_round, local_epochs=settings["local_epochs"],
                                     batch_size=settings["batch_size"], lr=settings["lr"])
                    strategy = (base if epsilon is None else
                                strategy_for(mode, base, clients=clients, epsilon=epsilon,
                                             num_rounds=settings["num_rounds"], clip=settings["clip"]))
                    _, history = fl.run_federated(fl.LogisticRegression(num_features, 10), clients, strategy,
                                                  num_rounds=settings["num_rounds"], test_data=(X_test, y_test))
                    sigma = getattr(strategy, "noise_multiplier", 0.0)
                    return 100 * history.last("test_accuracy"), history.last("epsilon") if epsilon else 0.0, sigma

                t = time.perf_counter()
                baseline = run(None)[0] if mode != "adaptive" else None
                cells = [run(epsilon) for epsilon in EPSILONS]
                level = "record" if mode == "local" else "user"
                rows.append((name, num_clients, f"{mode} ({level})", "-" if baseline is None else f"{baseline:.1f}",
                             *(f"{acc:.1f} (σ={sigma:.2f})" for acc, _, sigma in cells),
                             f"{max(e for _, e, _ in cells):.2f}", f"{time.perf_counter() - t:.0f}"))
    table("(b) Final test accuracy % vs ε (δ = 1e-5), IID clients, logistic regression. local: every client "
          f"every round, DP-SGD {LOCAL['num_rounds']} rounds x 1 epoch, batch {LOCAL['batch_size']}, lr "
          f"{LOCAL['lr']}, C = {LOCAL['clip']}, ε = the worst client's record-level ε; central / adaptive: "
          f"half the clients per round (q = 0.5), {CENTRAL['num_rounds']} rounds x {CENTRAL['local_epochs']} "
          f"epochs, batch {CENTRAL['batch_size']}, lr {CENTRAL['lr']}, S = {CENTRAL['clip']} (adaptive: initial "
          "S, target median), ε = user-level. 'non-private' = the same FedAvg without the DP wrapper; "
          "'largest ε' = the largest ε the run reported (<= target)", rows,
          ["data", "clients", "mode (DP level)", "non-private", *(f"ε = {e:g}" for e in EPSILONS), "largest ε",
           "s"])
    if include_mnist and not T10K.is_dir():
        print(f"\nMNIST rows skipped: {T10K} not found")


if __name__ == "__main__":
    args = set(sys.argv[1:])
    print(f"Python {sys.version.split()[0]}, torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    start = time.perf_counter()
    if "--utility-only" not in args:
        capstone_default()
        dashboard_rerun()
        engine_speedup()
        accounting_cost()
    if "--speed-only" not in args:
        utility(include_mnist="--no-mnist" not in args)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
