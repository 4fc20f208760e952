/* tests/harness/badplugins/bad_default.c — refused: a default outside its own range. */
#include "bad.h"
static const struct mt_param_spec params[] = {{"steps", MT_PARAM_INT, "0", 1, 10, NULL, "steps"}};
MT_BAD_PLUGIN(.name = "bad_default", .params = params, .n_params = 1);
