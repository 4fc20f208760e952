/* tests/harness/badplugins/bad_abi.c — refused: ABI major 99. */
#include "bad.h"
MT_BAD_PLUGIN(.abi_major = 99, .name = "bad_abi");
