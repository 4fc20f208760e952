/* tests/harness/test_plugin.h — the descriptor of the harness's test plugins (plugins/
 * and badplugins/).
 *
 * What it is for: MT_TEST_PLUGIN(fields...) exports the descriptor with the ABI header
 * (version, struct size) filled in and `.run = run`; the designated initializers given
 * add the rest (name, summary, params, ...) or, in badplugins/, break one field on
 * purpose. What it is not for: real workload plugins, whose descriptors are written out
 * in full as the ABI's documentation shows.
 */
#ifndef MT_TESTS_TEST_PLUGIN_H
#define MT_TESTS_TEST_PLUGIN_H

#include <memtrade/workload.h>

#define MT_TEST_PLUGIN(...)                                                                        \
    MT_WORKLOAD_EXPORT const struct mt_workload memtrade_workload = {                              \
        .abi_major = MEMTRADE_WORKLOAD_ABI_MAJOR,                                                  \
        .abi_minor = MEMTRADE_WORKLOAD_ABI_MINOR,                                                  \
        .struct_size = sizeof(struct mt_workload),                                                 \
        .run = run,                                                                                \
        __VA_ARGS__}

#endif
