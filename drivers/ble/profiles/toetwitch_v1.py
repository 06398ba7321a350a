"""toetwitch's open foot-sensor profile, version 1 (docs/protocol.md)."""

from __future__ import annotations

from toetwitch.drivers.ble import profile_v1 as pv1
from toetwitch.drivers.ble.profiles import DeviceProfile

PROFILE = DeviceProfile(
    name="toetwitch-v1",
    description="open toetwitch foot-sensor GATT profile v1 (EMG + accelerometer)",
    service_uuid=pv1.SERVICE_UUID,
    info_uuid=pv1.INFO_UUID,
    control_uuid=pv1.CONTROL_UUID,
    data_uuid=pv1.DATA_UUID,
    parse_info=pv1.decode_info,
    start=lambda resume: pv1.start_command(mode=pv1.START_RESUME if resume else pv1.START_NEW),
    stop=pv1.stop_command,
    streams="EMG (1 channel, µV) and/or 3-axis accelerometer (g), as the sensor's Info says",
    rates="EMG >= 500 Hz (2000 Hz typical), accelerometer >= 50 Hz; read from the sensor",
    detects="fasciculations, contractions and movement (EMG), twitches from the "
            "accelerometer alone when there is no EMG",
)
