"""BLE foot sensors: the open GATT profile v1, its codec, the raw packet log, the bleak
client, and an emulated sensor on bumble's virtual radio (``toetwitch.drivers.ble.emulator``).

Importing this package is cheap; bleak and bumble are imported by the modules that need them.
"""
