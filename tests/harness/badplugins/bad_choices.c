/* tests/harness/badplugins/bad_choices.c — refused: a choice list with an empty item. */
#include "bad.h"
static const struct mt_param_spec params[] = {
    {"dtype", MT_PARAM_CHOICE, "fp32", 0, 0, "fp32||bf16", "dtype"}};
MT_BAD_PLUGIN(.name = "bad_choices", .params = params, .n_params = 1);
