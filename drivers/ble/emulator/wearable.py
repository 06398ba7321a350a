"""What the emulated accelerometer wearables (Movesense, MetaWear) share: the recording's
accelerometer at the device's rate, seeded notification loss, and the advertisement.

Pure helpers; each device's peripheral (:mod:`.movesense`, :mod:`.metawear`) speaks its own
protocol on top of them.
"""

from __future__ import annotations

import numpy as np
from bumble.core import UUID, AdvertisingData
from numpy.typing import NDArray

from toetwitch.drivers.ble.emulator.bitalino import resample
from toetwitch.drivers.errors import RecordingError
from toetwitch.drivers.recording import Recording


def recording_acc_g(rec: Recording, fs_hz: float) -> NDArray[np.float64]:
    """The recording's accelerometer, (n, 3) in g, resampled (polyphase) to ``fs_hz``.

    Lost samples (NaN, from a replayed packet log) become 0 before resampling, as
    :func:`~toetwitch.drivers.ble.emulator.bitalino.resample` does; a recording without an
    accelerometer cannot be served by an accelerometer wearable (:class:`RecordingError`).
    """
    if rec.acc_g is None or not rec.fs_acc_hz:
        raise RecordingError("the recording has no accelerometer stream for an emulated "
                             "accelerometer sensor to serve (choose one with acc_x/acc_y/acc_z)",
                             rec.meta.get("path") or rec.name)
    acc = np.asarray(rec.acc_g, dtype=np.float64).reshape(len(rec.acc_g), -1)[:, :3]
    return resample(acc, float(rec.fs_acc_hz), float(fs_hz)).reshape(-1, 3)


def advertisement(name: str, uuid16: tuple[int, ...] = (), uuid128: tuple[str, ...] = ()
                  ) -> tuple[bytes, bytes]:
    """``(advertising data, scan response)``: flags, the service UUIDs and as much of the name
    as fits in 31 bytes (shortened, as real boards do: "MetaWear EMU" beside a 128-bit UUID
    leaves room for "MetaWear"); the whole name in the scan response."""
    fields: list[tuple[int, bytes]] = [(AdvertisingData.FLAGS, bytes([0x06]))]
    if uuid16:
        fields.append((AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                       b"".join(u.to_bytes(2, "little") for u in uuid16)))
    if uuid128:
        fields.append((AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                       b"".join(UUID(u).to_bytes() for u in uuid128)))
    raw = name.encode()
    room = 31 - sum(2 + len(v) for _, v in fields) - 2
    fields.append((AdvertisingData.COMPLETE_LOCAL_NAME, raw) if len(raw) <= room
                  else (AdvertisingData.SHORTENED_LOCAL_NAME, raw[:max(room, 0)]))
    scan = AdvertisingData([(AdvertisingData.COMPLETE_LOCAL_NAME, raw)])
    return bytes(AdvertisingData(fields)), bytes(scan)
