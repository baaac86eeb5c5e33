"""Attacks on federated learning, privacy auditing and secure aggregation (Part IV).

Import the submodules: ``from dpfl_course.privacy import inversion, membership, audit, secagg, shamir``.
"""
