/* heap_device.h — device memory's bookkeeping in the preloaded profiler: live and peak
 * bytes per kind (device, vmm, managed, pinned) and category, the tables of live blocks,
 * VMM handles and mappings, and device allocation sites.
 *
 * What it is for: what heap_cuda.c's hooks call after the driver answered, and what the
 * report (heap_output.c) reads. Every function here runs with the lock held (heap_internal.h)
 * except where it says otherwise. What it is not for: host heap (heap_tracker.h), finding
 * the driver's entry points (heap_cuda.c).
 */
#ifndef MT_HEAP_DEVICE_H
#define MT_HEAP_DEVICE_H

#include "heap_internal.h"

/* "device", "vmm", "managed", "pinned": index = MT_DEV_* (the report's kind names). */
MT_HIDDEN extern const char *const mt_heap_dev_kind_names[MT_DEV_NKIND];

/* Books a new block `key` (an address; for MT_DEV_VMM a handle) of n bytes of `kind` in
 * category cat at the stack (frames, depth, hash). A key already live is first taken out
 * as freed (a race with another thread's free). Lock held. */
MT_HIDDEN void mt_heap_dev_alloc(int kind, uint64_t key, uint64_t n, int cat,
                                 const uintptr_t *frames, int depth, uint64_t hash);
/* Takes the live block at address key out of the table into *out (kind, size, site...);
 * returns 1, or 0 when the address is unknown (nothing changes). Its bytes stay counted
 * until mt_heap_dev_release or mt_heap_dev_restore. Lock held. */
MT_HIDDEN int mt_heap_dev_take(uint64_t key, struct mt_heap_dev_rec *out);
/* The free of a block taken with mt_heap_dev_take succeeded: uncounts it. Lock held. */
MT_HIDDEN void mt_heap_dev_release(const struct mt_heap_dev_rec *r);
/* The free failed: puts it back. Lock held. */
MT_HIDDEN void mt_heap_dev_restore(const struct mt_heap_dev_rec *r);
/* A call of `kind` that the driver refused (counted, not booked), a free of an address or
 * handle never booked. Lock held. */
MT_HIDDEN void mt_heap_dev_failed(int kind);
MT_HIDDEN void mt_heap_dev_unknown_free(int kind);
/* VMM: cuMemRelease of a handle (its bytes leave when it is released and unmapped; 0:
 * unknown handle); cuMemMap of n bytes at va to handle; cuMemUnmap of [va, va+n) (returns
 * the mappings removed). Lock held. */
MT_HIDDEN int mt_heap_dev_handle_release(uint64_t handle);
MT_HIDDEN void mt_heap_dev_map(uint64_t va, uint64_t n, uint64_t handle);
MT_HIDDEN size_t mt_heap_dev_unmap(uint64_t va, uint64_t n);

/* Copies live bytes per kind (takes the lock). */
MT_HIDDEN void mt_heap_dev_live(long long live[MT_DEV_NKIND]);
/* At exit, lock held, tracking stopped: each site's share of its kind's peak, and leaks. */
MT_HIDDEN void mt_heap_dev_finish(void);
/* Read-only views for the report, after mt_heap_dev_finish. */
MT_HIDDEN const struct mt_heap_device *mt_heap_dev_state(void);

#endif
