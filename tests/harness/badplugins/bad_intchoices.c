/* tests/harness/badplugins/bad_intchoices.c — refused: an integer parameter whose choice
 * list holds an entry that is not an integer within its range. */
#include "bad.h"
static const struct mt_param_spec params[] = {
    {"bits", MT_PARAM_INT, "4", 2, 16, "16|8|4|x", "bits per weight"}};
MT_BAD_PLUGIN(.name = "bad_intchoices", .params = params, .n_params = 1);
