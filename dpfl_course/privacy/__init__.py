"""Attacks on federated learning, privacy auditing and secure aggregation (Part IV).

Import the module a notebook needs, e.g. ``from dpfl_course.privacy import audit``:

- ``inversion``: gradient inversion of a client update (iDLG label, first-layer leak, DLG), MSE/PSNR;
- ``membership``: membership inference scores, ROC/AUC, the bound (ε, δ)-DP puts on any attack;
- ``audit``: Clopper–Pearson, the empirical ε lower bound, the canary game, the one-run audit;
- ``fixed_point``, ``masking``, ``shamir``, ``secagg``: secure aggregation (Bonawitz et al. 2017)
  from its parts: integers mod 2^k, X25519 + HKDF seeds and ChaCha20 masks, secret sharing, the protocol;
- ``secure_fedavg``: a FedAvg round (and a strategy wrapper) through secure aggregation;
- ``distributed_dp``: each client's share of the Gaussian noise.
"""
