/* tests/harness/badplugins/bad_nosym.c — refused: exports no memtrade_workload. */
#include <memtrade/workload.h>
MT_WORKLOAD_EXPORT int memtrade_workload_v0 = 1;
