"""Shared test configuration.

Hypothesis profiles (the property tests, ``tests/test_properties.py``):

* ``dev`` (default): 100 examples per property.
* ``ci``: 200 examples, no deadline (shared CI machines are slow and noisy),
  the reproduction blob printed on failure, derandomized: every CI run tries
  the same examples, so a red CI is reproducible and never a fluke; the
  random exploration happens in ``dev`` runs. Chosen when ``CI`` is set in
  the environment, as CI services do.

``HYPOTHESIS_PROFILE=<name>`` selects a profile explicitly and wins over ``CI``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=100)
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    print_blob=True,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)
