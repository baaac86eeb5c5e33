"""Secure aggregation (Bonawitz et al. 2017): the server learns the sum of the clients' updates and
nothing about any single one, even when some clients drop out.

In plain federated learning (FedAvg, Flower's default) every client uploads its update in the
clear; TLS protects the wire, not against the server. Here each client u uploads

    y_u = x_u + PRG(b_u) + Σ_{v>u} PRG(s_uv) − Σ_{v<u} PRG(s_uv)   (mod 2^bits)

where x_u is its update in fixed point (:mod:`dpfl_course.privacy.fixed_point`), s_uv a seed that
u and v agree on by an X25519 key exchange (:mod:`dpfl_course.privacy.masking`; no secret is set up
in advance) and b_u a private self-mask seed. Each pairwise mask appears once with + and once
with −, so it cancels in the sum. Every client Shamir-shares b_u and its masking private key
among all clients. Two kinds of dropout are handled:

* a client that drops after the masks were agreed but before uploading (U2 ∖ U3 in the paper):
  the survivors reveal shares of its private key and the server removes its pairwise masks;
* a client that uploads and then drops before the unmasking stage (U3 ∖ U4, ``late_dropouts``):
  its upload stays in the sum, and the other survivors reveal shares of its b_u as for any uploader.

For every client that uploaded, the server rebuilds b_u and removes the self mask. It never gets
both secrets of one client: with both it could unmask that client's upload if it arrived late
(double masking). At least t clients must take part in the unmasking stage.

The model is honest-but-curious (the server follows the protocol and tries to learn from what
it sees), as in Bonawitz et al.'s first protocol; the malicious-server version adds signatures and
a consistency round. SecAgg+ (Bell et al. 2020), which Flower implements, masks each client with
a neighbourhood of other clients instead of all n − 1: O(log n) of them in the paper; in Flower the
neighbourhood size is the user's ``num_shares`` (an int, or a fraction of the clients), not set
automatically. Flower's SecAgg+ parameters map to ours: ``reconstruction_threshold`` ↔ ``threshold``,
``modulus_range`` ↔ 2^``bits``, ``quantization_range``/(2·``clipping_range``) ↔ ``scale``
(2^22/16 = 2^18 by default). Flower clips each value to ±``clipping_range``, rounds it
stochastically and shifts it into [0, ``quantization_range``]; :func:`fixed_point.encode` rounds
to the nearest grid point and refuses values too large for the headroom instead of clipping them.

Randomness: with ``seed=None`` keys and seeds come from the operating system (``os.urandom``),
as in a deployment. With an integer ``seed`` (for the course's repeatable outputs) every private
key and self-mask seed is *derived* from it with HKDF — anybody who knows the seed knows every
key, so this is for teaching only. The sum is exact whatever the keys.

>>> import numpy as np
>>> updates = np.array([[0.5, -1.0], [0.25, 2.0], [-0.125, 0.0]])
>>> result = secure_sum(updates, threshold=2, seed=0)
>>> result.sum.tolist()
[0.625, 1.0]
>>> secure_sum(updates, threshold=2, dropouts=[1], seed=0).sum.tolist()   # clients 0 and 2
[0.375, -1.0]
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from dpfl_course._validate import check_finite, check_int
from dpfl_course.privacy import shamir
from dpfl_course.privacy.fixed_point import DEFAULT_BITS, DEFAULT_SCALE, check_bits, decode, encode, modulus_mask
from dpfl_course.privacy.masking import check_seed, derive_private_key, derive_secret, pair_seed, prg_mask, public_bytes

__all__ = ["RecoveryError", "SecAggClient", "SecAggResult", "secure_sum", "unmask_with_both_secrets"]


class RecoveryError(ValueError):
    """Too few clients took part in the unmasking stage to rebuild the secrets: the round must be aborted."""


class SecAggClient:
    """One client of the protocol: its keys, the shares it holds, its masked upload.

    The stages follow Bonawitz et al. (and Flower's SecAgg+ workflow): advertise a public key;
    share the two secrets (self-mask seed and masking private key) with every client; upload the
    masked update; in the unmasking stage reveal, for each other client, the one share the server
    may have — once per round.

    Keys: this simulation has one key pair per client, for the masks. A deployment needs a second
    one: the shares travel to the other clients *through the server*, so each client encrypts them
    under a key agreed with the recipient from a separate key pair (Bonawitz et al.'s c_u keys;
    Flower's ``secaggplus_mod`` has ``sk1`` for masks and ``sk2`` for shares). Reusing the masking
    key would be unsafe: when u drops out the server rebuilds u's masking key, and with it could
    decrypt every share u received — one share of every other client's b_v and key. After t
    dropouts it would hold t shares of a survivor's both secrets and could unmask its upload.

    Args:
        client_id: u in [0, num_clients).
        num_clients: n, everyone taking part in this round.
        threshold: t, shares needed to rebuild a secret, in [2, n].
        seed: None for operating-system randomness, or an int in [0, 2^128 − 1] for repeatable lessons.
        server_round: the round number, mixed into every derived seed.
    """

    def __init__(self, client_id: int, *, num_clients: int, threshold: int, seed=None, server_round: int = 0):
        self.num_clients = check_int("num_clients", num_clients, low=2)
        self.client_id = check_int("client_id", client_id, low=0, high=self.num_clients - 1)
        self.threshold = check_int("threshold", threshold, low=2, high=self.num_clients)
        self.server_round = check_int("server_round", server_round, low=0)
        if seed is None:
            self._private_key = X25519PrivateKey.generate()
            self._self_seed = os.urandom(32)
            self._share_seed = None
        else:
            seed = check_seed(seed)
            u, r = self.client_id, self.server_round
            self._private_key = derive_private_key(seed, u, server_round=r)
            self._self_seed = derive_secret(seed, "self seed", u, server_round=r)
            self._share_seed = derive_secret(seed, "shamir", u, server_round=r)
        self.public_key = public_bytes(self._private_key)
        self.held_shares: dict[int, tuple[shamir.Share, shamir.Share]] = {}
        self._revealed = False

    def share_secrets(self) -> dict[int, tuple[shamir.Share, shamir.Share]]:
        """Shares of (self-mask seed, masking private key), one pair for each client v (self included).

        The two secrets are split with independent random polynomials. In a deployment each pair
        travels to v through the server, encrypted under a key from a second key pair (see the
        class docstring); here it is handed over.
        """
        n, t = self.num_clients, self.threshold
        seeds = (None, None) if self._share_seed is None else (self._share_seed + b"b", self._share_seed + b"k")
        raw_key = self._private_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                  serialization.NoEncryption())
        self_shares = shamir.split(self._self_seed, threshold=t, num_shares=n, seed=seeds[0])
        key_shares = shamir.split(raw_key, threshold=t, num_shares=n, seed=seeds[1])
        return {v: (self_shares[v], key_shares[v]) for v in range(n)}

    def receive_shares(self, sender: int, shares: tuple[shamir.Share, shamir.Share]) -> None:
        """Keep the pair of shares that client ``sender`` gave to this client."""
        self.held_shares[check_int("sender", sender, low=0, high=self.num_clients - 1)] = shares

    def masked_input(self, encoded, public_keys, *, bits: int = DEFAULT_BITS) -> np.ndarray:
        """y_u = x_u + PRG(b_u) + Σ_{v>u} PRG(s_uv) − Σ_{v<u} PRG(s_uv)  (mod 2^bits).

        Args:
            encoded: this client's update already encoded mod 2^bits (:func:`fixed_point.encode`).
            public_keys: every client's public key, by client id (the server relays them).
        """
        bits = check_bits(bits)
        x = np.asarray(encoded, dtype=np.uint64)
        y = x + prg_mask(self._self_seed, x.size, bits=bits)
        u = self.client_id
        for v, key in public_keys.items():
            if v == u:
                continue
            mask = prg_mask(pair_seed(self._private_key, key, u=u, v=v, server_round=self.server_round), x.size,
                            bits=bits)
            y = y + mask if v > u else y - mask  # uint64 wraps mod 2^64, and 2^bits divides 2^64
        return y & modulus_mask(bits)

    def reveal(self, dropped, survivors) -> dict[str, dict[int, shamir.Share]]:
        """The unmasking stage: shares of each dropped client's private key and each survivor's self seed.

        Args:
            dropped: clients that did not upload (their pairwise masks must be removed).
            survivors: clients whose masked upload the server received (this client among them).

        Raises:
            ValueError: ids out of range, a client named both dropped and surviving (revealing both
                secrets would let the server unmask its upload, see :func:`unmask_with_both_secrets`),
                this client not among the survivors, or a second call in the same round (a second
                call with other lists could hand out the other secret of a client).
            RecoveryError: fewer survivors than the threshold (the round cannot succeed).
        """
        n = self.num_clients
        dropped = {check_int("dropped", u, low=0, high=n - 1) for u in _ids(dropped, "dropped")}
        survivors = {check_int("survivors", u, low=0, high=n - 1) for u in _ids(survivors, "survivors")}
        if self._revealed:
            raise ValueError(f"reveal must be called once per round (client {self.client_id} has already "
                             f"revealed its shares in round {self.server_round})")
        if dropped & survivors:
            raise ValueError(f"dropped and survivors must be disjoint (never reveal both secrets of a client), "
                             f"got both for {sorted(dropped & survivors)}")
        if self.client_id not in survivors:
            raise ValueError(f"survivors must include this client ({self.client_id}): only a client whose "
                             f"upload was received takes part in unmasking")
        if len(survivors) < self.threshold:
            raise RecoveryError(f"survivors must number at least threshold = {self.threshold}, got {len(survivors)}")
        self._revealed = True
        return {"private_key": {u: self.held_shares[u][1] for u in sorted(dropped) if u in self.held_shares},
                "self_seed": {u: self.held_shares[u][0] for u in sorted(survivors) if u in self.held_shares}}


def _ids(ids, name: str) -> list:
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
        raise ValueError(f"{name} must be a list of client ids, got {ids!r}")
    return list(ids)


@dataclass
class SecAggResult:
    """The outcome of one secure aggregation, and everything the server saw.

    Attributes:
        sum: the decoded sum of the uploaded updates (float64).
        sum_encoded: the same sum mod 2^bits, exactly (uint64).
        masked_uploads: each uploader's y_u (uint64), by client id — all the server sees of x_u.
        public_keys: the public keys the server relayed.
        survivors: clients whose upload is in the sum (including late dropouts), sorted.
        dropouts: clients that dropped before uploading, sorted.
        late_dropouts: clients that uploaded, then dropped before the unmasking stage, sorted.
        revealed_self_seeds: clients whose self-mask seed b_u the server rebuilt from the shares it
            actually received (should be the survivors).
        revealed_private_keys: clients whose private key the server rebuilt from the shares it
            actually received (should be the dropouts).
        self_mask_total: Σ PRG(b_u) over the survivors mod 2^bits, as the server rebuilt it.
        threshold, scale, bits: the protocol's parameters.
        bytes_uploaded: bytes each client sent, by client id (key, shares, masked vector, revealed shares;
            shares counted unencrypted).
        seconds: wall time of the simulation: ``"client"``, the mean over the clients that uploaded of
            their own work (keys, shares, masking, revealing); ``"server"``, rebuilding secrets and
            removing masks.
    """

    sum: np.ndarray
    sum_encoded: np.ndarray
    masked_uploads: dict[int, np.ndarray]
    public_keys: dict[int, bytes]
    survivors: tuple[int, ...]
    dropouts: tuple[int, ...]
    revealed_self_seeds: tuple[int, ...]
    revealed_private_keys: tuple[int, ...]
    threshold: int
    scale: float
    bits: int
    late_dropouts: tuple[int, ...] = ()
    self_mask_total: np.ndarray | None = None
    bytes_uploaded: dict[int, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _check_updates(updates) -> np.ndarray:
    x = np.asarray(updates, dtype=np.float64) if not hasattr(updates, "detach") else \
        updates.detach().cpu().double().numpy()
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"updates must be a (num_clients, size) array with at least 2 clients and 1 value, "
                         f"got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("updates must be finite numbers, got NaN or inf")
    return x


def _check_dropouts(dropouts, n: int, name: str = "dropouts") -> tuple[int, ...]:
    out = tuple(sorted(check_int(name, d, low=0, high=n - 1) for d in _ids(dropouts, name)))
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must name distinct clients, got {list(dropouts)}")
    return out


def secure_sum(updates, *, threshold: int | None = None, dropouts=(), late_dropouts=(),
               scale: float = DEFAULT_SCALE, bits: int = DEFAULT_BITS, seed=None,
               server_round: int = 0) -> SecAggResult:
    """Sum the clients' update vectors by secure aggregation; return the sum and what the server saw.

    Simulates one round of the protocol: every client advertises a key and shares its secrets;
    the clients in ``dropouts`` then vanish before uploading; the others upload masked vectors;
    the clients in ``late_dropouts`` vanish after uploading; the rest reveal shares; the server
    removes the masks and decodes the sum of every uploaded update.

    Args:
        updates: (num_clients, size) real numbers, one row per client (numpy array or tensor).
        threshold: t, shares needed to rebuild a secret, in [2, num_clients]; default ⌊n/2⌋ + 1
            (a majority, so no minority of clients can rebuild a secret with the server's help).
        dropouts: ids of clients that drop out after the masks were agreed, before uploading.
        late_dropouts: ids of clients that upload and then drop out before the unmasking stage.
        scale: fixed-point scale; each value is rounded to a multiple of 1/scale.
        bits: the modulus is 2^bits (Flower's ``modulus_range`` defaults to 2^32 too).
        seed: None for real randomness, an int in [0, 2^128 − 1] for repeatable keys (lessons only).
        server_round: mixed into every seed, so masks never repeat across rounds.

    Returns:
        A :class:`SecAggResult`. Its ``sum_encoded`` equals the plain sum of the uploaders' encoded
        updates mod 2^bits exactly; ``sum`` is that sum decoded.

    Raises:
        RecoveryError: fewer than ``threshold`` clients left for the unmasking stage (abort the round).
        ValueError: bad updates, threshold, dropouts, scale, bits or seed, or too little headroom.
    """
    x = _check_updates(updates)
    n, size = x.shape
    threshold = n // 2 + 1 if threshold is None else check_int("threshold", threshold, low=2, high=n)
    dropouts = _check_dropouts(dropouts, n)
    late = _check_dropouts(late_dropouts, n, "late_dropouts")
    if set(dropouts) & set(late):
        both = sorted(set(dropouts) & set(late))
        raise ValueError(f"dropouts and late_dropouts must be disjoint, got both for {both}")
    bits = check_bits(bits)
    scale = check_finite("scale", scale, low=0, low_open=True)
    server_round = check_int("server_round", server_round, low=0)
    seed = None if seed is None else check_seed(seed)
    survivors = tuple(u for u in range(n) if u not in dropouts)  # U3: their uploads are in the sum
    revealers = tuple(u for u in survivors if u not in late)  # U4: they take part in unmasking
    encoded = encode(x, scale=scale, bits=bits, num_clients=n)  # headroom for the sum of all n

    # Stage 0-1: keys advertised, secrets shared (before anyone drops out).
    client_seconds = np.zeros(n)
    clients = []
    for u in range(n):
        start = time.perf_counter()
        clients.append(SecAggClient(u, num_clients=n, threshold=threshold, seed=seed, server_round=server_round))
        client_seconds[u] += time.perf_counter() - start
    public_keys = {c.client_id: c.public_key for c in clients}
    sent = {u: len(public_keys[u]) for u in range(n)}
    for c in clients:
        start = time.perf_counter()
        pairs = c.share_secrets()
        client_seconds[c.client_id] += time.perf_counter() - start
        for v, pair in pairs.items():
            clients[v].receive_shares(c.client_id, pair)
            if v != c.client_id:
                sent[c.client_id] += sum(len(s.to_bytes()) for s in pair)

    # Stage 2: the survivors upload masked vectors; the dropouts are gone.
    if len(survivors) < threshold:
        raise RecoveryError(f"survivors must number at least threshold = {threshold} to unmask the sum, "
                            f"got {len(survivors)} of {n} clients")
    uploads = {}
    for u in survivors:
        start = time.perf_counter()
        uploads[u] = clients[u].masked_input(encoded[u], public_keys, bits=bits)
        client_seconds[u] += time.perf_counter() - start
        sent[u] += size * ((bits + 7) // 8)

    # Stage 3: unmasking. The late dropouts are gone; each remaining client reveals one share per
    # other client, never both kinds. The server keeps only what it actually received.
    if len(revealers) < threshold:
        raise RecoveryError(f"clients in the unmasking stage must number at least threshold = {threshold}, "
                            f"got {len(revealers)} of {n} clients ({len(late)} left after uploading)")
    self_shares: dict[int, list] = {}
    key_shares: dict[int, list] = {}
    for u in revealers:
        start = time.perf_counter()
        revealed = clients[u].reveal(dropouts, survivors)
        client_seconds[u] += time.perf_counter() - start
        for owner, share in revealed["self_seed"].items():
            self_shares.setdefault(owner, []).append(share)
        for owner, share in revealed["private_key"].items():
            key_shares.setdefault(owner, []).append(share)
        sent[u] += sum(len(s.to_bytes()) for kind in revealed.values() for s in kind.values())
    start = time.perf_counter()
    total = np.zeros(size, dtype=np.uint64)
    for y in uploads.values():
        total = total + y
    self_mask_total = np.zeros(size, dtype=np.uint64)
    for u in survivors:  # remove each uploader's self mask (late dropouts' too: others hold their shares)
        self_mask_total = self_mask_total + prg_mask(shamir.reconstruct(self_shares[u]), size, bits=bits)
    self_mask_total &= modulus_mask(bits)
    total = total - self_mask_total
    for u in dropouts:  # remove the dropped client's pairwise masks still inside the uploads
        key_u = X25519PrivateKey.from_private_bytes(shamir.reconstruct(key_shares[u]))
        for v in survivors:
            mask = prg_mask(pair_seed(key_u, public_keys[v], u=u, v=v, server_round=server_round), size, bits=bits)
            total = total - mask if u > v else total + mask  # v added +mask for u > v, −mask for u < v
    total &= modulus_mask(bits)
    seconds = {"client": float(client_seconds[list(survivors)].mean()), "server": time.perf_counter() - start}
    return SecAggResult(sum=decode(total, scale=scale, bits=bits), sum_encoded=total, masked_uploads=uploads,
                        public_keys=public_keys, survivors=survivors, dropouts=dropouts, late_dropouts=late,
                        revealed_self_seeds=tuple(sorted(self_shares)), revealed_private_keys=tuple(sorted(key_shares)),
                        self_mask_total=self_mask_total, threshold=threshold, scale=scale, bits=bits,
                        bytes_uploaded=sent, seconds=seconds)


def unmask_with_both_secrets(masked, *, client: SecAggClient, public_keys, bits: int = DEFAULT_BITS) -> np.ndarray:
    """What a server holding BOTH secrets of client u (b_u and its private key) gets: u's update.

    This is why the protocol never reveals both for one client: a client that looked dropped but
    whose upload arrives late would be unmasked entirely. Returns x_u mod 2^bits.
    """
    bits = check_bits(bits)
    y = np.asarray(masked, dtype=np.uint64)
    zero = np.zeros(y.size, dtype=np.uint64)
    masks = client.masked_input(zero, public_keys, bits=bits)  # every mask u added, from u's two secrets
    return (y - masks) & modulus_mask(bits)
