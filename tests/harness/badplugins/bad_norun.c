/* tests/harness/badplugins/bad_norun.c — refused: no run() hook. */
#include "bad.h"
MT_BAD_PLUGIN(.name = "bad_norun", .run = NULL);
