# THERMO_V1: built like PYBV10 (STM32F405, its alternate functions). The
# linker script is named here as well: invoke deploy reads from it the flash
# a firmware may write.
include boards/PYBV10/mpconfigboard.mk
LD_FILE = boards/stm32f405.ld
