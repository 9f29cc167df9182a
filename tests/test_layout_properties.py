"""Any valid manifest survives the layout-2 files unchanged (Hypothesis)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import entry_files, other_files, snapshot
from hypothesis import assume, given
from hypothesis import strategies as st
from test_properties import PROPERTY, as_recorded, manifests, multi_line

from valhalla_status.manifest import is_canonical, load_manifest, read_manifest, write_manifest
from valhalla_status.models import HistoryEntry, Manifest
from valhalla_status.rules.history import differences
from valhalla_status.storage.layout import history_dir


@pytest.mark.slow
@PROPERTY
@given(manifest=manifests(), data=st.data())
def test_any_valid_manifest_round_trips_through_the_layout_2_files(
    manifest: Manifest, data: Any
) -> None:
    assume(manifest.history)
    history = sorted(manifest.history, key=lambda entry: entry.at)  # stable: ties keep order
    # The history starts at its newest init (what came before is what `init --force` replaced).
    starts = [index for index, entry in enumerate(history) if entry.action == "init"]
    history = history[starts[-1] :] if starts else history
    newest = history[-1].at
    assume(manifest.system.completed_at is None or manifest.system.completed_at <= newest)
    packs = [
        pack.model_copy(update={"notes": data.draw(st.none() | multi_line(300))})
        for pack in manifest.packs
    ]
    layout_2 = manifest.model_copy(
        update={
            "schema_version": 2,
            "system": manifest.system.model_copy(update={"updated_at": newest}),
            "packs": packs,
            "history": history,
        }
    )
    # What the random history does not explain is recorded, as `record` would, so that the
    # history explains the main file.
    unexplained = {d.key: [d.said, d.actual] for d in differences(layout_2)}
    if unexplained:
        record = HistoryEntry.model_validate(
            {"at": newest, "by": "prop", "action": "record", "changes": unexplained, "notes": "x"}
        )
        history.append(record)
        layout_2 = layout_2.model_copy(update={"history": history})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "valhalla.yaml"
        assert write_manifest(path, layout_2) is not None
        loaded = load_manifest(path)
        assert as_recorded(loaded) == layout_2
        assert len(entry_files(history_dir(path))) == len(history)
        assert other_files(history_dir(path)) == []
        before = snapshot(history_dir(path))
        assert write_manifest(path, loaded) is None, "a re-write of the same data is a no-op"
        assert snapshot(history_dir(path)) == before
        main, _ = read_manifest(path)
        assert is_canonical(path, loaded, main)
