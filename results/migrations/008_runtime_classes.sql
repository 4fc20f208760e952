-- Migration 8: runtime terms per class (issue 21). The terms of migration 7 depend on
-- more than the build and the machine: on the GEMM shapes and data type oneDNN is given,
-- on the libraries a workload loads (OpenBLAS reserves a buffer per thread when it is
-- loaded), on the threads, and on whether the run trained before the phase (oneDNN keeps
-- what training created). So each row also names its class: the workload, the parameters
-- that choose shapes, data types and kernels, the threads and the run's history, as
-- results/runtime.h defines it (MT_RUNTIME_CLASS_SQL, mt_runtime_class). Rows of
-- migration 7 keep their values under class 'probe of migration 7', which no run's class
-- equals: they are shown by `plan --measure-runtime` until measured again, never matched.
-- Forward-only; applied in one transaction by results/store.c, which then sets
-- PRAGMA user_version = 8.
CREATE TABLE runtime_terms_8 (
    build_id    TEXT NOT NULL,  -- git revision, compiler, flags, build type, oneDNN version
    machine     TEXT NOT NULL,  -- CPU model, cores, kernel
    class       TEXT NOT NULL,  -- workload, class parameters, threads, history
    phase       TEXT NOT NULL,  -- a phase of the class's plan: train, infer, eval, ...
    term        TEXT NOT NULL,  -- workspace, untagged, blas_buffer, heap_other, resident,
                                -- accounted
    bytes       REAL,
    unavailable TEXT,
    probe       TEXT NOT NULL,  -- the probe run's configuration (it ran in a database of
                                -- its own, so that it joins no trade-off of this one)
    measured_at TEXT NOT NULL,
    PRIMARY KEY (build_id, machine, class, phase, term),
    CHECK ((bytes IS NULL) <> (unavailable IS NULL))
);
INSERT INTO runtime_terms_8(build_id, machine, class, phase, term, bytes, unavailable, probe,
                            measured_at)
    SELECT build_id, machine, 'probe of migration 7', phase, term, bytes, unavailable, probe,
           measured_at FROM runtime_terms;
DROP TABLE runtime_terms;
ALTER TABLE runtime_terms_8 RENAME TO runtime_terms;
