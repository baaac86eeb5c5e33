"""Attack benchmarks (notebook 09): gradient inversion and membership inference against DP, and the
live view's re-render time.

Run with ``.venv/bin/python benchmarks/bench_attacks.py`` (OMP_NUM_THREADS=1 is set here); about
a minute of CPU time on a 2-core machine. Every number is measured in this run; on a shared
machine the timings move by tens of %.

1. **Reconstruction per (σ, C).** The FedSGD update of one training digit (8×8) on the model of
   notebook 09 (``inversion.attack_model``: 64 → 32 sigmoid → 10, seed 0, round 1), uploaded
   without defence (σ = 0, no clipping) or as a DP-FedSGD update (clip to C, add N(0, (σC)²) per
   coordinate, ``inversion.dp_client_gradient``). Attacks: the analytic first-layer leak, DLG with
   the cosine distance and DLG with the squared distance (L-BFGS, 50 iterations, labels inferred
   from the gradient). Mean MSE over ``NUM_IMAGES`` digits, PSNR of that mean MSE, and how many
   labels the gradient gave right.
2. **Membership AUC per (σ, C).** The federated model of notebook 09 (100 training digits over 5
   IID clients, MLP 64 → 128 → 10, FedAvg 5 local epochs × batch 10 × lr 0.5, 30 rounds) trained
   plain (σ = 0, no clipping) or with ``fl.LocalDP`` (record-level DP-SGD at every client, σ and
   per-example clip C); the loss-threshold attack on the 100 members vs the 450 test digits: AUC,
   advantage, the record-level ε spent (RDP, δ = 1e-5) and test accuracy. One training seed per
   cell: the AUC's standard error with 100 members is about 0.03.
3. **AUC at target ε.** σ calibrated with ``dp.noise_multiplier_for`` to each target (C = 1); the
   largest AUC and advantage any attack can have on members against held-out digits at that ε
   (one model: the replace-one bound (2ε, (1 + e^ε)δ), ``neighbours="replace_one"``), the in/out
   game's AUC bound at (ε, δ) for comparison (notebook 10's experiment, not this one), and whether
   the ROC is within the replace-one bound up to sampling error (``membership.roc_within_bound``,
   DKW margins at 99.9 %).
4. **The live view.** Notebook 09 is executed with live widgets and ``render_attacks`` timed:
   median over the slider's settings of a first visit (trains the federated model at that (σ, C)
   for the demo's 10 rounds and inverts three updates) and of a second visit (cached: only the
   figure).
"""

from __future__ import annotations

import math
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402

from dpfl_course import data, dp, fl  # noqa: E402
from dpfl_course.privacy import inversion, membership  # noqa: E402
from dpfl_course.testing import ms, print_table as table  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

DELTA = 1e-5
NUM_IMAGES = 10
DLG_ITERS = 50
NUM_MEMBERS, NUM_CLIENTS, HIDDEN, NUM_ROUNDS = 100, 5, 128, 30
FEDAVG = {"local_epochs": 5, "batch_size": 10, "lr": 0.5}


def db(error):
    return min(99.0, 10 * math.log10(1 / error)) if error > 0 else 99.0


def reconstruction_table(digits):
    model = inversion.attack_model(64, 32, 10, generator=torch.Generator().manual_seed(0))
    settings = [(0.0, None)] + [(s, c) for s in [0.0, 1e-3, 1e-2, 1e-1, 1.0] for c in [0.1, 1.0, 10.0]]
    rows = []
    for sigma, clip in settings:
        errors = {"analytic": [], "cosine": [], "l2": []}
        labels = 0
        for i in range(NUM_IMAGES):
            x, y = digits.X_train[i:i + 1], digits.y_train[i:i + 1]
            if clip is None:
                update = inversion.client_gradient(model, x, y)
            else:
                update = inversion.dp_client_gradient(model, x, y, max_grad_norm=clip, noise_multiplier=sigma,
                                                      generator=torch.Generator().manual_seed(1000 + i))
            labels += inversion.infer_label(update) == int(y)
            errors["analytic"].append(inversion.mse(inversion.analytic_inversion(update), x[0]))
            for distance in ["cosine", "l2"]:
                x_hat, _ = inversion.dlg(model, update, distance=distance, max_iter=DLG_ITERS,
                                         generator=torch.Generator().manual_seed(i))
                errors[distance].append(inversion.mse(x_hat, x))
        means = {k: float(np.mean(v)) for k, v in errors.items()}
        rows.append((f"{sigma:g}", "none" if clip is None else f"{clip:g}",
                     *(f"{means[k]:.1e} / {db(means[k]):.1f}" for k in ["analytic", "cosine", "l2"]),
                     f"{labels}/{NUM_IMAGES}"))
    table(f"Gradient inversion of a one-digit update: mean MSE / PSNR (dB) over {NUM_IMAGES} digits",
          rows, ["σ", "C", "analytic leak", "DLG cosine", "DLG squared", "labels right"])


class Membership:
    def __init__(self, digits):
        order = torch.randperm(digits.num_train, generator=torch.Generator().manual_seed(0))
        self.X_in, self.y_in = digits.X_train[order[:NUM_MEMBERS]], digits.y_train[order[:NUM_MEMBERS]]
        self.X_out, self.y_out = digits.X_test, digits.y_test
        self.clients = fl.make_client_data(self.X_in, self.y_in, data.partition_iid(self.y_in, NUM_CLIENTS, seed=0))

    def run(self, strategy):
        params, history = fl.run_federated(fl.MLP(64, HIDDEN, 10, generator=torch.Generator().manual_seed(0)),
                                           self.clients, strategy, num_rounds=NUM_ROUNDS, seed=0)
        model = fl.MLP(64, HIDDEN, 10)
        fl.set_parameters(model, params)
        s_in = membership.loss_scores(membership.example_losses(model, self.X_in, self.y_in))
        s_out = membership.loss_scores(membership.example_losses(model, self.X_out, self.y_out))
        with torch.no_grad():
            acc = float((model(self.X_out).argmax(1) == self.y_out).float().mean())
        eps = history.last("epsilon") if "epsilon" in history.columns else math.inf
        return s_in, s_out, eps, acc


def membership_tables(digits):
    lab = Membership(digits)
    rows = []
    settings = [(0.0, None)] + [(s, c) for s in [1e-2, 1e-1, 1.0, 10 ** 0.5] for c in [0.1, 1.0, 10.0]]
    for sigma, clip in settings:
        strategy = (fl.FedAvg(**FEDAVG) if clip is None else
                    fl.LocalDP(fl.FedAvg(**FEDAVG), noise_multiplier=sigma, max_grad_norm=clip, delta=DELTA))
        s_in, s_out, eps, acc = lab.run(strategy)
        rows.append((f"{sigma:.3g}", "none" if clip is None else f"{clip:g}", f"{membership.roc_auc(s_in, s_out):.3f}",
                     f"{membership.advantage(s_in, s_out):.3f}", f"{eps:.3g}", f"{100 * acc:.1f}"))
    table("Membership inference (loss threshold) against the federated model, per (σ, C)", rows,
          ["σ", "C", "AUC", "advantage", "record-level ε", "accuracy %"])

    q, steps = fl.local_dp_plan(NUM_MEMBERS // NUM_CLIENTS, local_epochs=FEDAVG["local_epochs"],
                                batch_size=FEDAVG["batch_size"])
    rows = []
    for target in [1.0, 2.0, 4.0, 8.0, 16.0, 64.0]:
        sigma = dp.noise_multiplier_for(target_epsilon=target, sample_rate=q, steps=steps * NUM_ROUNDS, delta=DELTA)
        s_in, s_out, eps, acc = lab.run(fl.LocalDP(fl.FedAvg(**FEDAVG), noise_multiplier=sigma, max_grad_norm=1.0,
                                                   delta=DELTA))
        bound = {"epsilon": eps, "delta": DELTA, "neighbours": "replace_one"}  # members vs held-out, one model
        rows.append((f"{target:g}", f"{sigma:.2f}", f"{eps:.2f}", f"{100 * acc:.1f}",
                     f"{membership.roc_auc(s_in, s_out):.3f}", f"{membership.dp_max_auc(**bound):.3f}",
                     f"{membership.dp_max_auc(epsilon=eps, delta=DELTA):.3f}",
                     f"{membership.advantage(s_in, s_out):.3f}", f"{membership.dp_max_advantage(**bound):.3f}",
                     "yes" if membership.roc_within_bound(s_in, s_out, **bound) else "NO"))
    table("Membership inference under local DP-SGD at a target ε (C = 1, δ = 1e-5); "
          "max: replace-one bound (2ε, (1 + e^ε)δ)", rows,
          ["target ε", "σ", "ε spent", "accuracy %", "AUC", "max AUC", "in/out max AUC", "advantage", "max adv.",
           "within bound"])


def live_view_timing():
    from dpfl_course.testing import live_notebook

    with live_notebook("09_attacks_on_fl.ipynb") as nb:
        render = nb["render_attacks"]
        control = nb["view"].controls["noise_multiplier"]
        count = round((control.max - control.min) / control.step)
        sigmas = [10 ** (control.min + k * control.step) for k in range(count + 1)]
        first, second = [], []
        for sigma in sigmas:
            for times in (first, second):
                start = time.perf_counter()
                render(noise_multiplier=sigma, max_grad_norm=0.316)
                times.append(time.perf_counter() - start)
    table("Notebook 09's live view: render_attacks (C = 0.316, every σ step)",
          [("first visit (trains, inverts, draws)", ms(statistics.median(first), 0), ms(max(first), 0)),
           ("second visit (cached, draws)", ms(statistics.median(second), 0), ms(max(second), 0))],
          ["render", "median ms", "max ms"])


if __name__ == "__main__":
    digits = data.load_digits()
    reconstruction_table(digits)
    membership_tables(digits)
    live_view_timing()
