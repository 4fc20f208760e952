-- Migration 7: the runtime terms of the plan (issue 21). What a memory plan cannot derive
-- from a configuration (library workspace such as oneDNN's scratch, primitive and JIT
-- buffers; untagged library allocations; the heap's peak beyond its categories' peaks;
-- what is resident beyond the heap: thread stacks, code, allocator slack) is measured
-- once per build and machine by a probe run and stored here, per phase and term, so
-- `memtrade plan`, `memtrade query check` and the report show it as its own line.
-- build_id and machine are derived from runs.facts_json by results/runtime.c (one
-- definition for the writer and the readers). bytes is NULL with `unavailable` saying why
-- when the probe could not measure the term. Forward-only; applied in one transaction by
-- results/store.c, which then sets PRAGMA user_version = 7.
CREATE TABLE IF NOT EXISTS runtime_terms (
    build_id    TEXT NOT NULL,  -- git revision, compiler, flags, build type, oneDNN version
    machine     TEXT NOT NULL,  -- CPU model, cores, kernel
    phase       TEXT NOT NULL,  -- the probe's phase: train, infer, eval
    term        TEXT NOT NULL,  -- workspace, untagged, heap_other, resident
    bytes       REAL,
    unavailable TEXT,
    probe       TEXT NOT NULL,  -- the probe's configuration (it ran in a database of its
                                -- own, so that its run joins no trade-off of this one)
    measured_at TEXT NOT NULL,
    PRIMARY KEY (build_id, machine, phase, term),
    CHECK ((bytes IS NULL) <> (unavailable IS NULL))
);
