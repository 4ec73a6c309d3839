"""Shared test configuration.

Hypothesis profiles (the property tests, ``tests/test_properties.py``):

* ``dev`` (default): 100 examples per property.
* ``ci``: 200 examples, no deadline (shared CI machines are slow and noisy),
  the reproduction blob printed on failure, derandomized: every CI run tries
  the same examples, so a red CI is reproducible and never a fluke; the
  random exploration happens in ``dev`` runs. Chosen when ``CI`` is set in
  the environment, as CI services do.

``HYPOTHESIS_PROFILE=<name>`` selects a profile explicitly and wins over ``CI``.

Tests marked ``kernel`` boot a real kernel under QEMU (``tools/kernel_harness``)
and are skipped unless ``--run-kernel KERNEL`` names one (a Debian series such
as ``6.1``, or a kernel image path; the option may be repeated).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# Names come from the bundled pci.ids subset, not the machine's database, so
# that expected CLI output does not depend on the machine the tests run on.
os.environ.setdefault("IOMMUGROUPS_PCI_IDS", "bundled")

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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-kernel",
        action="append",
        default=[],
        metavar="KERNEL",
        help="run the tests marked kernel, booting KERNEL under QEMU: a Debian series "
        "(6.1, 6.12, 7.2, 7.3) or a kernel image path; may be repeated",
    )


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-kernel"):
        if config.pluginmanager.hasplugin("xdist"):
            # one worker boots the kernels (--dist loadgroup): the harness's
            # download cache and QEMU are not shared between processes
            group = pytest.mark.xdist_group("kernel")
            for item in items:
                if item.get_closest_marker("kernel") is not None:
                    item.add_marker(group)
        return
    skip = pytest.mark.skip(reason="boots a real kernel: give --run-kernel 6.1 (or a bzImage)")
    for item in items:
        if item.get_closest_marker("kernel") is not None:
            item.add_marker(skip)
