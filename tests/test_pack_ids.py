"""Every command agrees on which pack an id names: upper-cased when ASCII, and a letter that
only looks like one once upper-cased (``'ı'.upper()`` is ``'I'``) names no pack."""

from __future__ import annotations

import pytest
from conftest import Workspace

from valhalla_status.client import StatusClient

# Each upper-cases to the id of a default pack (I, S, K, FF is none), but is not that id.
LOOKALIKES = ["ı", "ſ", "\u212a", "ｉ"]


@pytest.fixture
def built(ws: Workspace) -> Workspace:
    assert ws.run("init", "--by", "alice").exit_code == 0
    assert ws.run("complete").exit_code == 0
    return ws


@pytest.mark.parametrize("typed", ["i", "I", "s"])
def test_an_id_in_any_case_names_the_same_pack_everywhere(built: Workspace, typed: str) -> None:
    wanted = typed.upper()
    assert built.run("pack", "show", typed, "--json").exit_code == 0
    check = built.run("check", "--require-installed", typed)
    assert check.exit_code == 0, check.output
    status = StatusClient(str(built.root / "site" / "status.json")).fetch()
    pack = status.pack(typed)
    assert pack is not None and pack.id == wanted


@pytest.mark.parametrize("typed", LOOKALIKES)
def test_a_lookalike_letter_names_no_pack_in_any_command(built: Workspace, typed: str) -> None:
    shown = built.run("pack", "show", typed)
    assert shown.exit_code == 1
    assert "no pack" in shown.stderr
    check = built.run("check", "--require-installed", typed)
    assert (check.exit_code, check.stderr) == (
        1,
        f"not ready: Valhalla 1.0.0 (site/status.json)\n  - no pack {typed}\n",
    )
    status = StatusClient(str(built.root / "site" / "status.json")).fetch()
    assert status.pack(typed) is None
    assert built.run("pack", "set", typed, "--status", "deprecated").exit_code == 1
