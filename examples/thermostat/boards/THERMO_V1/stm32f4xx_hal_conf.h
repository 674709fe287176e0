// THERMO_V1 uses the HAL configuration of the pyboard v1.0 it derives from.
#include "boards/PYBV10/stm32f4xx_hal_conf.h"
