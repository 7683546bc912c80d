# Boards: the ESP32 board, the simulator board with its fake hardware (sim_hw, THE place
# where hardware is faked), and the board profiles (boards/*.json) both load.
