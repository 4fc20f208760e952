/* tf_adamw.h — the AdamW arguments the optimizer tests run with: the GPT-2 recipe's
 * (mt_gpt_recipe_default: betas, eps, weight decay) through the model's own mapping
 * (mt_gpt_adamw_args), with the learning rate, gradient scale, step and zero_grad each test
 * states. Not for: the recipe's clipping or schedule (the tests feed the kernels directly). */
#ifndef MT_TF_ADAMW_H
#define MT_TF_ADAMW_H

#include <stdint.h>

#include "gpt.h"
#include "kernels.h"

static inline struct mt_adamw_args tf_adamw_args(float lr, float grad_scale, uint64_t step,
                                                 int zero_grad)
{
    struct mt_gpt_recipe r = mt_gpt_recipe_default(1);
    struct mt_adamw_args a;
    mt_gpt_adamw_args(&a, &r, lr, 1, 0.0f, 1.0f, step); /* norm 0: never clipped */
    a.grad_scale = grad_scale;
    a.zero_grad = zero_grad;
    return a;
}

#endif
