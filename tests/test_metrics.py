"""``metrics.txt``: the status in Prometheus' text exposition format, read by prometheus_client's
own parser: one series per pack and status, counts per status, readiness and its time, the
version as an info metric; label values escaped; the same bytes for the same manifest."""

from __future__ import annotations

from typing import Any

from conftest import EPOCH, EPOCH2, EPOCH2_TEXT, EPOCH_TEXT, Workspace, small_manifest
from prometheus_client.parser import text_string_to_metric_families


def metrics(ws: Workspace, data: dict[str, Any]) -> str:
    ws.write(data)
    assert ws.run("build").exit_code == 0
    return (ws.root / "site" / "metrics.txt").read_text(encoding="utf-8")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(name, sorted labels) -> value of every sample prometheus_client reads in ``text``."""
    found = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge", family.name
        assert family.documentation, family.name
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def completed(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` one day later: pack I installed, then the backend complete."""
    data["packs"][1]["status"] = "installed"
    data["system"].update(backend_complete=True, completed_at=EPOCH2_TEXT, updated_at=EPOCH2_TEXT)
    entry = {"at": EPOCH2_TEXT, "by": "bob", "notes": None}
    data["history"] += [
        {**entry, "action": "pack-set", "changes": {"packs.I.status": ["pending", "installed"]}},
        {
            **entry,
            "action": "complete",
            "changes": {"backend_complete": [False, True], "completed_at": [None, EPOCH2_TEXT]},
        },
    ]
    return data


def test_metrics_parse_with_prometheus_client_and_say_the_status(ws: Workspace) -> None:
    found = samples(metrics(ws, small_manifest()))
    assert found == {
        ("valhalla_info", (("name", "Valhalla"), ("version", "1.0.0"))): 1,
        ("valhalla_backend_complete", ()): 0,
        ("valhalla_backend_status_since_timestamp_seconds", ()): EPOCH,
        ("valhalla_updated_timestamp_seconds", ()): EPOCH,
        ("valhalla_packs", (("status", "installed"),)): 2,
        ("valhalla_packs", (("status", "pending"),)): 1,
        ("valhalla_packs", (("status", "deprecated"),)): 0,
        ("valhalla_packs", (("status", "experimental"),)): 0,
        **{
            ("valhalla_pack_status", (("pack", pack), ("status", status))): float(status == has)
            for pack, has in (("H", "installed"), ("I", "pending"), ("S", "installed"))
            for status in ("installed", "pending", "deprecated", "experimental")
        },
        **{("valhalla_pack_status_since_timestamp_seconds", (("pack", p),)): EPOCH for p in "HIS"},
    }


def test_a_completed_backend_and_a_changed_pack_carry_the_time_of_their_change(
    ws: Workspace,
) -> None:
    found = samples(metrics(ws, completed(small_manifest())))
    assert found[("valhalla_backend_complete", ())] == 1
    assert found[("valhalla_backend_status_since_timestamp_seconds", ())] == EPOCH2
    assert found[("valhalla_updated_timestamp_seconds", ())] == EPOCH2
    assert found[("valhalla_pack_status_since_timestamp_seconds", (("pack", "I"),))] == EPOCH2
    assert found[("valhalla_pack_status_since_timestamp_seconds", (("pack", "H"),))] == EPOCH
    assert found[("valhalla_packs", (("status", "pending"),))] == 0


def test_label_values_are_escaped_as_the_format_asks(ws: Workspace) -> None:
    data = small_manifest()
    data["system"]["name"] = 'Val "hall" \\a'
    text = metrics(ws, data)
    assert 'valhalla_info{name="Val \\"hall\\" \\\\a",version="1.0.0"} 1\n' in text
    assert ("valhalla_info", (("name", 'Val "hall" \\a'), ("version", "1.0.0"))) in samples(text)


def test_the_text_is_exactly_this_and_the_same_every_build(ws: Workspace) -> None:
    first = metrics(ws, small_manifest())
    (ws.root / "site").rename(ws.root / "first")
    assert metrics(ws, small_manifest()) == first
    head = first.split("# HELP valhalla_pack_status ", 1)[0]
    assert head == (
        "# HELP valhalla_info The system's name and version; always 1.\n"
        "# TYPE valhalla_info gauge\n"
        'valhalla_info{name="Valhalla",version="1.0.0"} 1\n'
        "# HELP valhalla_backend_complete Whether the backend is complete (1) or in development"
        " (0).\n"
        "# TYPE valhalla_backend_complete gauge\n"
        "valhalla_backend_complete 0\n"
        "# HELP valhalla_backend_status_since_timestamp_seconds When the backend's readiness last"
        " changed to what it is now (Unix time).\n"
        "# TYPE valhalla_backend_status_since_timestamp_seconds gauge\n"
        f"valhalla_backend_status_since_timestamp_seconds {EPOCH}\n"
        "# HELP valhalla_updated_timestamp_seconds When the status last changed (Unix time).\n"
        "# TYPE valhalla_updated_timestamp_seconds gauge\n"
        f"valhalla_updated_timestamp_seconds {EPOCH}\n"
        "# HELP valhalla_packs The number of packs with each status.\n"
        "# TYPE valhalla_packs gauge\n"
        'valhalla_packs{status="installed"} 2\n'
        'valhalla_packs{status="pending"} 1\n'
        'valhalla_packs{status="deprecated"} 0\n'
        'valhalla_packs{status="experimental"} 0\n'
    )
    assert first.endswith(f'valhalla_pack_status_since_timestamp_seconds{{pack="S"}} {EPOCH}\n')
    assert EPOCH_TEXT not in first
