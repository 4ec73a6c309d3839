"""``show``, ``explain`` and ``what-if`` on the command line (issue "For people")."""

from __future__ import annotations

import json

import pytest

import iommugroups._cli.cmd_show as cmd_show
import iommugroups._cli.common as cli_common
from iommugroups import IommuGroupsError, canonical_groups, examples
from iommugroups._cli.app import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


class TestShow:
    def test_every_group_with_a_reason(self, capsys: pytest.CaptureFixture[str]) -> None:
        status, out, err = run(capsys, "show", "--example", "desktop")
        assert status == 0
        assert err == (  # every output says which kernel it modelled (issue 11)
            "iommugroups: note: modelled Linux 7.3 (the newest modelled; --kernel VERSION "
            "for another)\n"
        )
        assert out.count("IOMMU Group ") == len(canonical_groups(examples.desktop()).groups)
        assert out.count("  why: ") == out.count("IOMMU Group ")

    def test_class_filter(self, capsys: pytest.CaptureFixture[str]) -> None:
        _, out, _ = run(capsys, "show", "--example", "desktop", "--class", "gpu")
        assert "VGA compatible controller" in out
        assert "Non-Volatile memory controller" not in out

    def test_bad_class_is_a_usage_error(self, capsys: pytest.CaptureFixture[str]) -> None:
        status, out, err = run(capsys, "show", "--example", "desktop", "--class", "toaster")
        assert (status, out) == (2, "")
        assert err.startswith("iommugroups: error: ")

    def test_related_and_group_and_device(self, capsys: pytest.CaptureFixture[str]) -> None:
        g = canonical_groups(examples.desktop())
        gid = g.group_of("03:00.0")
        _, out, _ = run(capsys, "show", "--example", "desktop", "--related", "03:00.0")
        assert "04:00.0" in out
        _, out, _ = run(capsys, "show", "--example", "desktop", "--group", str(gid))
        assert out.count("IOMMU Group ") == 1
        _, out, _ = run(capsys, "show", "--example", "desktop", "--device", "05:")
        assert "05:01.0" in out
        assert "01:00.0" not in out

    def test_tree(self, capsys: pytest.CaptureFixture[str]) -> None:
        _, out, _ = run(capsys, "show", "--example", "d05", "--tree")
        assert out.startswith("[0002:f8]")
        assert "000a:11:00.1" in out

    def test_no_colour_when_not_a_terminal_or_no_color(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _, out, _ = run(capsys, "show", "--example", "desktop")
        assert "\x1b[" not in out
        monkeypatch.setattr(cmd_show, "use_color", lambda stream, env: True)
        _, out, _ = run(capsys, "show", "--example", "desktop")
        assert "\x1b[" in out

    def test_nothing_usable_offers_the_examples(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def no_sysfs(root: str = "/") -> object:
            raise IommuGroupsError("no /sys/bus/pci/devices")

        monkeypatch.setattr(cli_common, "read_sysfs", no_sysfs)
        status, out, err = run(capsys, "show")
        assert (status, out) == (2, "")
        assert "--example {d05, desktop}" in err or "--example {d05,desktop}" in err.replace(
            ", ", ","
        )
        assert "Traceback" not in err

    def test_dot_and_missing_graphviz(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        status, out, _ = run(capsys, "show", "--example", "desktop", "--format", "dot")
        assert status == 0
        assert out.startswith("digraph")
        assert out.count("subgraph cluster_") == len(canonical_groups(examples.desktop()).groups)
        monkeypatch.setattr("shutil.which", lambda name: None)
        status, out, err = run(capsys, "show", "--example", "desktop", "--format", "svg")
        assert (status, out) == (2, "")
        assert "Graphviz" in err
        assert "--format dot" in err


class TestExplain:
    def test_one_device_names_rules(self, capsys: pytest.CaptureFixture[str]) -> None:
        status, out, _ = run(capsys, "explain", "01:00.0", "--example", "desktop")
        assert status == 0
        assert "(R4.2)" in out or "(R2.4, R4.2)" in out

    def test_pair_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        status, out, _ = run(
            capsys, "explain", "03:00.0", "04:00.0", "--example", "desktop", "--json"
        )
        assert status == 0
        doc = json.loads(out)
        assert doc["schema"] == "iommugroups.explain/1"

    def test_unknown_device(self, capsys: pytest.CaptureFixture[str]) -> None:
        status, out, err = run(capsys, "explain", "7f:00.0", "--example", "desktop")
        assert (status, out) == (2, "")
        assert "7f:00.0" in err


class TestWhatIf:
    def test_acs_override_option_labels_non_upstream(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        status, out, _ = run(
            capsys, "what-if", "--example", "desktop", "--acs-override", "downstream,multifunction"
        )
        assert status == 0
        assert "NOT UPSTREAM" in out
        assert "cost:" in out

    def test_positional_and_option_forms_agree(self, capsys: pytest.CaptureFixture[str]) -> None:
        _, a, _ = run(capsys, "what-if", "--example", "desktop", "remove-acs=00:01.0", "--json")
        _, b, _ = run(
            capsys, "what-if", "--example", "desktop", "--remove-acs", "00:01.0", "--json"
        )
        assert json.loads(a) == json.loads(b)
        assert json.loads(a)["schema"] == "iommugroups.whatif/2"

    def test_no_change_and_bad_change(self, capsys: pytest.CaptureFixture[str]) -> None:
        status, _, err = run(capsys, "what-if", "--example", "desktop")
        assert status == 2
        assert "no change given" in err
        status, _, err = run(capsys, "what-if", "--example", "desktop", "frobnicate=1")
        assert status == 2
        assert err.startswith("iommugroups: error: ")


def test_show_says_the_pictures_ignore_filters(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "show", "--example", "desktop", "--class", "gpu", "--tree")
    assert status == 0
    assert "show the whole machine" in err
    assert "00:1f.0" in out  # the whole tree, as the note says
