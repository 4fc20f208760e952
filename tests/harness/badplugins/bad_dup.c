/* tests/harness/badplugins/bad_dup.c — refused: two parameters with one name. */
#include "bad.h"
static const struct mt_param_spec params[] = {
    {"steps", MT_PARAM_INT, "1", 1, 10, NULL, "steps"},
    {"steps", MT_PARAM_INT, "2", 1, 10, NULL, "steps again"}};
MT_BAD_PLUGIN(.name = "bad_dup", .params = params, .n_params = 2);
