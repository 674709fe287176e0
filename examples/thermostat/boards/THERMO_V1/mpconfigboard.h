// THERMO_V1: the thermostat's own board, described outside the MicroPython
// tree (invoke build --port stmhal --board-dir PATH, or the app's board_dir).
// Its MCU, clocks and peripherals are a pyboard v1.0's, so it starts from the
// tree's PYBV10 configuration and changes what differs on this PCB.
#include "boards/PYBV10/mpconfigboard.h"

#undef MICROPY_HW_BOARD_NAME
#define MICROPY_HW_BOARD_NAME       "Thermostat v1"

// no accelerometer, and no LCD skin (the display is on SPI1: DISP_* in pins.csv)
#undef MICROPY_HW_HAS_MMA7660
#define MICROPY_HW_HAS_MMA7660      (0)
#undef MICROPY_HW_HAS_LCD
#define MICROPY_HW_HAS_LCD          (0)
