/* test_memcat.c — the model's memory-category tagging, seen through the memcat.h API.
 *
 * What it is for: this test defines the heap profiler's hooks itself (strong definitions
 * win over memcat.h's weak references) and checks that creating a model switches to each
 * slab's category and back, that every tensor is reported under its slab's category with
 * its exact size (the reports of a category add up to its slab minus alignment padding),
 * and that a KV cache is reported as kv_cache.
 * What it is not for: the profiler itself (profilers/heap has its own tests).
 */
#include <stdio.h>
#include <string.h>

#include "gpt.h"
#include "tf_test.h"

static __thread int current;               /* this thread's category */
static size_t set_calls[MT_MEM_CAT_COUNT]; /* switches to each category */
static size_t reported[MT_MEM_CAT_COUNT];  /* bytes reported per category */
static size_t n_reports;
static int saw_qkv_grad, saw_kv;

int mt_heap_set_category(int cat)
{
    int prev = current;
    CHECK(cat >= 0 && cat < MT_MEM_CAT_COUNT);
    current = cat;
    __atomic_add_fetch(&set_calls[cat], 1, __ATOMIC_RELAXED);
    return prev;
}

void mt_heap_report_tensor(const void *ptr, size_t size, int cat, const char *name)
{
    CHECK(ptr && size && name && cat >= 0 && cat < MT_MEM_CAT_COUNT);
    reported[cat] += size;
    n_reports++;
    saw_qkv_grad |= !strcmp(name, "grad.qkv_w") && cat == MT_MEM_GRADIENTS;
    saw_kv |= !strcmp(name, "kv.cache") && cat == MT_MEM_KV_CACHE;
}

int main(void)
{
    char err[256];
    struct mt_gpt_config cfg;
    struct mt_gpt *m = NULL;
    CHECK_OK(mt_gpt_config_parse(&cfg, "tiny,n_layer=3", err, sizeof err), err);
    mt_memcat_set(MT_MEM_DATA); /* the caller's own category must survive */
    CHECK_OK(mt_gpt_create(&m, &cfg, MT_GPT_TRAIN, 2, 16, err, sizeof err), err);
    CHECK(current == MT_MEM_DATA);
    const int cats[] = {MT_MEM_WEIGHTS,     MT_MEM_GRADIENTS, MT_MEM_OPTIMIZER,
                        MT_MEM_ACTIVATIONS, MT_MEM_ACT_GRADS, MT_MEM_WORKSPACE};
    for (size_t i = 0; i < sizeof cats / sizeof cats[0]; i++) {
        int c = cats[i];
        printf("%-11s slab %8zu bytes, reported %8zu, switches %zu\n", mt_mem_cat_names[c],
               m->slab_bytes[c], reported[c], set_calls[c]);
        CHECK(set_calls[c] >= 1);
        CHECK(reported[c] <= m->slab_bytes[c] && m->slab_bytes[c] - reported[c] < 64 * 32);
    }
    CHECK(reported[MT_MEM_WEIGHTS] == 4 * m->n_params); /* no padding in tiny */
    CHECK(saw_qkv_grad);
    CHECK(n_reports ==
          (MT_P_COUNT - 1 /* lm_head: tied */) * 2 + 2 + MT_A_COUNT + MT_D_COUNT + MT_W_COUNT);
    struct mt_gpt_kv *kv = NULL;
    CHECK_OK(mt_gpt_kv_create(&kv, &cfg, 8, err, sizeof err), err);
    CHECK(saw_kv && reported[MT_MEM_KV_CACHE] == kv->kv_bytes && current == MT_MEM_DATA);
    mt_gpt_kv_free(kv);
    mt_gpt_free(m);
    printf("ok\n");
    return 0;
}
