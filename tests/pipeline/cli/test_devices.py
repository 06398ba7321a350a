"""``toetwitch devices``: each profile's lines, and what an accelerometer alone can count."""

from __future__ import annotations

import dataclasses
import json

from toetwitch.drivers.ble import profiles as registry
from toetwitch.pipeline.cli.main import main
from toetwitch.pipeline.present.capability import ACC_ONLY_CAPABILITY, ACTIGRAPHY_CAVEAT


def test_an_accelerometer_only_profile_says_what_it_can_count(monkeypatch, capsys):
    real = registry.profiles()
    acc_only = dataclasses.replace(real["toetwitch-v1"], name="acc-test",
                                   streams="3-axis accelerometer (g)", stream_kinds=("acc",))
    monkeypatch.setattr(registry, "profiles", lambda: {**real, "acc-test": acc_only})
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    blocks = {b.split("\n", 1)[0]: b for b in out.split("\n\n")}
    assert f"note:    {ACC_ONLY_CAPABILITY}" in blocks["acc-test"]
    assert f"note:    {ACTIGRAPHY_CAVEAT}" in blocks["acc-test"]
    with_emg = [n for n, p in real.items() if "emg" in p.streams.lower()]
    acc_only_real = [n for n in real if n not in with_emg]
    assert with_emg and acc_only_real  # the open profile and BITalino; the wearables
    for name in with_emg:  # profiles with EMG carry no such note
        assert "note:" not in blocks[name]
    for name in acc_only_real:  # an accelerometer wearable does
        assert f"note:    {ACC_ONLY_CAPABILITY}" in blocks[name]
    assert main(["devices", "--json"]) == 0
    rows = {r["profile"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["acc-test"]["notes"] == [ACC_ONLY_CAPABILITY, ACTIGRAPHY_CAVEAT]
    assert all(rows[name]["notes"] == [] for name in with_emg)
    assert all(rows[name]["notes"] == [ACC_ONLY_CAPABILITY, ACTIGRAPHY_CAVEAT] for name in acc_only_real)
