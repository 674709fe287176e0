// crc16: the CRC-16/CCITT checksum of the thermostat's radio frames, in C.
//
//     >>> import crc16
//     >>> hex(crc16.ccitt(b"123456789"))
//     '0x29b1'
//
// A C module for mpforge is a folder named as the module, holding .c files
// that define `const mp_obj_module_t mp_module_<name>` (see the README,
// "Firmware for a product"). Bit by bit in Python this loop is slow on a
// microcontroller; here it is one call.
#include "py/obj.h"
#include "py/runtime.h"

// ccitt(data[, crc]): polynomial 0x1021, initial value 0xffff (or crc, to
// continue over several buffers), no reflection, no final xor
STATIC mp_obj_t crc16_ccitt(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t data;
    mp_get_buffer_raise(args[0], &data, MP_BUFFER_READ);
    mp_uint_t crc = n_args > 1 ? ((mp_uint_t)mp_obj_get_int(args[1]) & 0xffff) : 0xffff;
    const uint8_t *byte = data.buf;
    for (size_t i = 0; i < data.len; i++) {
        crc ^= (mp_uint_t)byte[i] << 8;
        for (int bit = 0; bit < 8; bit++) {
            crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
        }
    }
    return MP_OBJ_NEW_SMALL_INT(crc);
}
STATIC MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(crc16_ccitt_obj, 1, 2, crc16_ccitt);

STATIC const mp_rom_map_elem_t crc16_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_crc16) },
    { MP_ROM_QSTR(MP_QSTR_ccitt), MP_ROM_PTR(&crc16_ccitt_obj) },
};
STATIC MP_DEFINE_CONST_DICT(crc16_globals, crc16_globals_table);

const mp_obj_module_t mp_module_crc16 = {
    .base = { &mp_type_module },
    .name = MP_QSTR_crc16,
    .globals = (mp_obj_dict_t *)&crc16_globals,
};
