/* tests/harness/badplugins/bad_size.c — refused: struct_size smaller than ABI 1.0's. */
#include "bad.h"
MT_BAD_PLUGIN(.struct_size = 16, .name = "bad_size");
