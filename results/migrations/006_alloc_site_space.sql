-- Migration 6: allocation sites of device memory. The preloaded profiler also books what
-- the CUDA driver hands out (`memtrade profile --device`); its sites are rows of
-- alloc_sites with `space` naming the memory: 'host' (the heap, every row before this
-- migration), 'device' (cuMemAlloc*, async and pool allocations), 'vmm' (cuMemCreate
-- handles), 'managed' (cuMemAllocManaged), 'pinned' (cuMemHostAlloc/cuMemAllocHost).
-- The space joins the key: one stack may allocate host and device memory. For device
-- rows peak_bytes is the site's share of its space's peak and temporary is 0. The table
-- is rebuilt (SQLite cannot change a primary key). Forward-only; applied in one
-- transaction by results/store.c, which then sets PRAGMA user_version = 6.
CREATE TABLE alloc_sites_v6 (
    run_id        INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    rank          INTEGER NOT NULL DEFAULT 0,
    stack_id      INTEGER NOT NULL REFERENCES stacks(id),
    category      TEXT NOT NULL,
    allocs        INTEGER NOT NULL,
    bytes         INTEGER NOT NULL,
    peak_bytes    INTEGER NOT NULL,
    temporary     INTEGER NOT NULL,
    leaked_bytes  INTEGER NOT NULL,
    leaked_allocs INTEGER NOT NULL,
    estimated     INTEGER NOT NULL DEFAULT 0,
    space         TEXT NOT NULL DEFAULT 'host', -- host, device, vmm, managed, pinned
    PRIMARY KEY (run_id, rank, stack_id, category, space)
);
INSERT INTO alloc_sites_v6(run_id, rank, stack_id, category, allocs, bytes, peak_bytes,
                           temporary, leaked_bytes, leaked_allocs, estimated, space)
SELECT run_id, rank, stack_id, category, allocs, bytes, peak_bytes, temporary, leaked_bytes,
       leaked_allocs, estimated, 'host'
FROM alloc_sites;
DROP TABLE alloc_sites;
ALTER TABLE alloc_sites_v6 RENAME TO alloc_sites;
CREATE INDEX IF NOT EXISTS alloc_sites_by_stack ON alloc_sites(stack_id);
