"""Certificates of LipSim's 2AFC decisions and distances, in the caller's pixel units (internal: the metric and
distance cores of :mod:`lipsim_tm.functional` compose them).

Data flows one way: :mod:`.policy` (rules, dtypes, floating-point slack) -> :mod:`.margins` (triplet margins in
embedding space, the decision) -> a rule, :mod:`.plain` (1-Lipschitz) or :mod:`.norm_aware` (uses the
pre-normalisation norms) -> :mod:`.intervals` (certified distance intervals).
"""
