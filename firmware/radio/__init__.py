# The radio: the BLE GATT service over aioble (the simulator's socket link is in targets/).
