"""Federated-learning benchmarks: vectorised vs sequential engine, and notebook 04's widget re-run.

Run with ``.venv/bin/python benchmarks/bench_fl.py`` (OMP_NUM_THREADS=1 is set here). Prints
tables; every number is measured in this run on this machine. The engines are timed alternately,
so that load from other processes on a shared machine hits both alike; medians are reported.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402

from dpfl_course import data, fl  # noqa: E402
from dpfl_course.testing import ms, print_table as table  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))




def digits_clients(num_clients, *, alpha=None, seed=0):
    ds = data.load_digits()
    labels = ds.y_train.numpy()
    parts = (data.partition_iid(labels, num_clients, seed=seed) if alpha is None
             else data.partition_dirichlet(labels, num_clients, alpha=alpha, seed=seed))
    return ds, fl.make_client_data(ds.X_train, ds.y_train, parts)


MODELS = {
    "logreg 64->10": lambda: fl.LogisticRegression(64, 10),
    "MLP 64->32->10": lambda: fl.MLP(64, 32, 10),
}


def engine_speed(repeats=7, num_rounds=5):
    """Time per round of each engine, all clients taking part, IID digits split."""
    rows = []
    for num_clients in (10, 100):
        _, clients = digits_clients(num_clients)
        for model_name, make_model in MODELS.items():
            for local_epochs in (1, 5):
                strategy = fl.FedAvg(clients_per_round=num_clients, local_epochs=local_epochs, batch_size=10, lr=0.1)
                model = make_model()
                times = {"sequential": [], "vectorised": []}
                for engine in times:  # warm-up (first calls build caches)
                    fl.run_federated(model, clients, strategy, num_rounds=1, engine=engine)
                for _ in range(repeats):
                    for engine in times:
                        t = time.perf_counter()
                        fl.run_federated(model, clients, strategy, num_rounds=num_rounds, engine=engine)
                        times[engine].append((time.perf_counter() - t) / num_rounds)
                seq, vec = statistics.median(times["sequential"]), statistics.median(times["vectorised"])
                rows.append((num_clients, model_name, local_epochs, ms(seq), ms(vec), f"{seq / vec:.1f}x"))
    table(f"Engine speed on digits (IID split, every client every round, batch 10, lr 0.1; ms per round, "
          f"median of {repeats} runs of {num_rounds} rounds; target: >= 10x at 100 clients)", rows,
          ["clients", "model", "local epochs", "sequential ms", "vectorised ms", "speed-up"])


def widget_rerun(repeats=9):
    """One re-run of notebook 04's demo at its default (10 IID clients, C = 0.3, E = 1, batch 10, lr 0.1,
    20 rounds, test accuracy every round); the MLP row shows the same run with the bigger model."""
    rows = []
    for model_name, make_model in MODELS.items():
        for engine in ("vectorised", "sequential"):
            ds, clients = digits_clients(10)
            strategy = fl.FedAvg(fraction_fit=0.3, local_epochs=1, batch_size=10, lr=0.1)
            model = make_model()
            times, accuracy = [], []
            for r in range(repeats + 1):
                t = time.perf_counter()
                _, history = fl.run_federated(model, clients, strategy, num_rounds=20, engine=engine,
                                              test_data=(ds.X_test, ds.y_test), seed=r)
                if r:  # the first run is a warm-up
                    times.append(time.perf_counter() - t)
                    accuracy.append(100 * history.last("test_accuracy"))
            p90 = statistics.quantiles(times, n=10)[-1]
            rows.append((model_name, engine, ms(statistics.median(times)), ms(p90),
                         f"{statistics.median(accuracy):.1f} % ({min(accuracy):.1f}-{max(accuracy):.1f} %)"))
    table(f"Notebook 04 widget re-run at its default: 10 IID clients, fraction_fit 0.3, 1 local epoch, "
          f"batch 10, lr 0.1, 20 rounds, test accuracy every round (median of {repeats} runs, seeds 1..{repeats}; "
          f"target: median <= 1000 ms)",
          rows, ["model", "engine", "median ms", "p90 ms", "final test accuracy: median (range over seeds)"])


if __name__ == "__main__":
    print(f"Python {sys.version.split()[0]}, torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    engine_speed()
    widget_rerun()
