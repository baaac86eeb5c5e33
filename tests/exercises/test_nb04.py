import torch

from dpfl_course import fl
from dpfl_course.exercises import nb04


def test_reference_solutions_pass():
    assert nb04.check_weighted_average(nb04.weighted_average).passed
    assert nb04.check_fedavg_round(nb04.fedavg_round).passed


def test_package_weighted_average_passes_the_checker():
    # the checker's notion of "right" is the package's fixed-name function, not only our reference
    assert nb04.check_weighted_average(fl.weighted_average).passed


def test_reference_round_equals_the_package_round():
    # fedavg_round with the package's local training is one round of run_federated (every client, sequential)
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(50, 4, generator=g), torch.randint(0, 3, (50,), generator=g)
    clients = fl.make_client_data(X, y, [range(0, 7), range(7, 30), range(30, 50)])
    model = fl.LogisticRegression(4, 3)
    start = fl.get_parameters(model)
    scratch = fl.LogisticRegression(4, 3)

    def local_train(parameters, X_k, y_k):  # full batch: no shuffling, so no per-client seed needed
        return fl.train_local(scratch, parameters, X_k, y_k, local_epochs=2, batch_size=None, lr=0.3,
                              generator=torch.Generator())

    ours = nb04.fedavg_round(start, clients, [0, 1, 2], local_train)
    theirs, _ = fl.run_federated(model, clients, fl.FedAvg(local_epochs=2, batch_size=None, lr=0.3),
                                 num_rounds=1, engine="sequential")
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)  # float32 sums in another order


def test_average_checker_rejects_the_plain_mean():
    # plausible mistake: every client counts the same, whatever its number of examples
    def plain(results):
        return [sum(p[j] for p, _ in results) / len(results) for j in range(len(results[0][0]))]

    fb = nb04.check_weighted_average(plain)
    assert not fb.passed and "plain mean" in fb.message


def test_average_checker_rejects_a_missing_division():
    # plausible mistake: sum of n_k * w_k, not divided by the total number of examples
    def unnormalised(results):
        return [sum(n * p[j] for p, n in results) for j in range(len(results[0][0]))]

    fb = nb04.check_weighted_average(unnormalised)
    assert not fb.passed and "divide" in fb.message


def test_average_checker_rejects_averaging_only_the_first_tensor():
    # plausible mistake: a model is a list of tensors; averaging results[k][0][0] only drops the bias
    def first_only(results):
        total = sum(n for _, n in results)
        return [sum(n * p[0] for p, n in results) / total]

    assert not nb04.check_weighted_average(first_only).passed


def test_average_checker_rejects_in_place_accumulation():
    # plausible mistake: accumulating into the first client's tensors changes what the client sent
    def in_place(results):
        total = sum(n for _, n in results)
        out = results[0][0]
        for j in range(len(out)):
            out[j].mul_(results[0][1])
            for p, n in results[1:]:
                out[j].add_(n * p[j])
            out[j].div_(total)
        return out

    fb = nb04.check_weighted_average(in_place)
    assert not fb.passed and "in place" in fb.message


def test_round_checker_rejects_client_by_client_training():
    # the source article's mistake: each client continues from the previous client's model
    def sequential(global_parameters, client_data, selected, local_train):
        parameters, results = global_parameters, []
        for cid in selected:
            parameters, n, _ = local_train(parameters, *client_data[cid])
            results.append((parameters, n))
        return parameters

    fb = nb04.check_fedavg_round(sequential)
    assert not fb.passed and "one after the other" in fb.message


def test_round_checker_rejects_training_every_client():
    # plausible mistake: ignoring `selected` and letting every client train
    def everyone(global_parameters, client_data, selected, local_train):
        return nb04.fedavg_round(global_parameters, client_data, range(len(client_data)), local_train)

    fb = nb04.check_fedavg_round(everyone)
    assert not fb.passed and "selected" in fb.message


def test_round_checker_rejects_an_unweighted_average():
    def unweighted(global_parameters, client_data, selected, local_train):
        results = [local_train([p.clone() for p in global_parameters], *client_data[c])[0] for c in selected]
        return [sum(r[j] for r in results) / len(results) for j in range(len(global_parameters))]

    fb = nb04.check_fedavg_round(unweighted)
    assert not fb.passed and "num_examples" in fb.message


def test_round_checker_rejects_changing_the_global_model_in_place():
    # plausible mistake: writing the average back into the global tensors
    def in_place(global_parameters, client_data, selected, local_train):
        new = nb04.fedavg_round(global_parameters, client_data, selected, local_train)
        for p, q in zip(global_parameters, new):
            p.copy_(q)
        return global_parameters

    fb = nb04.check_fedavg_round(in_place)
    assert not fb.passed and "in place" in fb.message


def test_skeleton_and_crashing_answers_give_messages_not_tracebacks():
    def skeleton(*args):
        raise NotImplementedError("Student exercise: average the clients' parameters")

    for check in (nb04.check_weighted_average, nb04.check_fedavg_round):
        fb = check(skeleton)
        assert not fb.passed and "NotImplementedError" in fb.message
    fb = nb04.check_fedavg_round(lambda *args: 1 / 0)
    assert not fb.passed and "ZeroDivisionError" in fb.message
    fb = nb04.check_weighted_average(lambda results: None)  # returns nothing
    assert not fb.passed and "expected" in fb.message
