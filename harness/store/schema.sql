-- harness results store.  Raw samples are the source of truth; every statistic in a
-- report is recomputed from them, so reports can be rebuilt without rerunning.
-- PRAGMA user_version holds the schema version (see db.py); older databases are brought up to
-- date by the explicit steps in migrate.py, never by a read.

CREATE TABLE IF NOT EXISTS runs (
    run_id          TEXT PRIMARY KEY,
    plan_name       TEXT NOT NULL,
    plan_path       TEXT NOT NULL,
    plan_sha256     TEXT NOT NULL,
    plan_text       TEXT NOT NULL,
    budgets_json    TEXT NOT NULL,
    settings_json   TEXT NOT NULL,
    harness_version TEXT NOT NULL,
    controller_host TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    finished_at     TEXT,
    status          TEXT NOT NULL CHECK (status IN ('running', 'complete', 'interrupted'))
);

-- Facts as measured from the device at the start of each run (not copied from the inventory).
CREATE TABLE IF NOT EXISTS devices (
    run_id      TEXT NOT NULL REFERENCES runs(run_id),
    device_id   TEXT NOT NULL,
    platform    TEXT NOT NULL,
    simulated   INTEGER NOT NULL,
    facts_json  TEXT NOT NULL,
    config_json TEXT NOT NULL,
    PRIMARY KEY (run_id, device_id)
);

-- Builds by content: the same bytes are one artifact whatever they are called.
CREATE TABLE IF NOT EXISTS artifacts (
    sha256        TEXT PRIMARY KEY,
    model         TEXT NOT NULL,
    stage         TEXT NOT NULL,
    format        TEXT NOT NULL,
    backend       TEXT NOT NULL,
    quantization  TEXT NOT NULL,
    size_bytes    INTEGER NOT NULL,
    manifest_json TEXT NOT NULL,
    inferred_json TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS cells (
    cell_id            INTEGER PRIMARY KEY,
    run_id             TEXT NOT NULL REFERENCES runs(run_id),
    cell_key           TEXT NOT NULL,
    device_id          TEXT NOT NULL,
    artifact_sha256    TEXT NOT NULL REFERENCES artifacts(sha256),
    artifact_path      TEXT NOT NULL,
    task               TEXT NOT NULL,
    runner             TEXT NOT NULL,
    -- v3: 'lost' = the device stopped answering; --resume measures the cell's lost runs again.
    status             TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'timeout', 'crashed', 'lost')),
    reason             TEXT NOT NULL,
    log                TEXT NOT NULL,
    warmup_iterations  INTEGER NOT NULL,
    iterations         INTEGER NOT NULL,
    load_ms            REAL,
    first_inference_ms REAL,
    peak_rss_mb        REAL,
    extra_json         TEXT NOT NULL,
    push_s             REAL,
    cooldown_wait_s    REAL,
    cooldown_note      TEXT NOT NULL,
    throttled          INTEGER NOT NULL DEFAULT 0,
    started_at         TEXT NOT NULL,
    finished_at        TEXT NOT NULL,
    -- v2: how many runs (processes / runner invocations) the plan asked for and how many are stored,
    -- and the settings the cell was measured with (the typed RunSettings, as JSON).
    runs               INTEGER NOT NULL DEFAULT 1,
    runs_done          INTEGER NOT NULL DEFAULT 1,
    settings_json      TEXT NOT NULL DEFAULT '{}',
    UNIQUE (run_id, cell_key)
);

-- v2: one row per run of a cell.  p50/p95 are the run's own percentiles: from its stored iterations,
-- or, for a runner that prints only a summary (summary_only=1), the runner's own figures.
CREATE TABLE IF NOT EXISTS cell_runs (
    cell_id            INTEGER NOT NULL REFERENCES cells(cell_id),
    run_index          INTEGER NOT NULL,
    status             TEXT NOT NULL,
    reason             TEXT NOT NULL,
    n                  INTEGER NOT NULL,
    p50_ms             REAL,
    p95_ms             REAL,
    summary_only       INTEGER NOT NULL DEFAULT 0,
    load_ms            REAL,
    first_inference_ms REAL,
    peak_rss_mb        REAL,
    push_s             REAL,
    cooldown_wait_s    REAL,
    throttled          INTEGER NOT NULL DEFAULT 0,
    started_at         TEXT NOT NULL,
    finished_at        TEXT NOT NULL,
    extra_json         TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (cell_id, run_index)
) WITHOUT ROWID;

-- Every iteration's latency: warm-ups are stored (phase='warmup') but never enter statistics.
-- idx counts on across the runs of a cell; run_index says which run (process) a sample came from.
CREATE TABLE IF NOT EXISTS samples (
    cell_id    INTEGER NOT NULL REFERENCES cells(cell_id),
    phase      TEXT NOT NULL CHECK (phase IN ('warmup', 'measured')),
    idx        INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    run_index  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (cell_id, phase, idx)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS thermal_samples (
    cell_id INTEGER NOT NULL REFERENCES cells(cell_id),
    t_s     REAL NOT NULL,
    sensor  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    value   REAL NOT NULL,
    unit    TEXT NOT NULL,
    run_index INTEGER NOT NULL DEFAULT 0  -- t_s is seconds since that run started
);
CREATE INDEX IF NOT EXISTS thermal_by_cell ON thermal_samples(cell_id);

-- Pairs the plan named that could not run (no backend, no runner), so reports can say why.
CREATE TABLE IF NOT EXISTS skipped (
    run_id          TEXT NOT NULL REFERENCES runs(run_id),
    device_id       TEXT NOT NULL,
    artifact_sha256 TEXT NOT NULL,
    reason          TEXT NOT NULL,
    PRIMARY KEY (run_id, device_id, artifact_sha256)
);

-- Transcription cells: one row per utterance, with the text exactly as the build produced it.
-- WER is computed from these rows at report time (normaliser and scoring can improve later).
CREATE TABLE IF NOT EXISTS transcripts (
    cell_id              INTEGER NOT NULL REFERENCES cells(cell_id),
    utt_id               TEXT NOT NULL,
    reference            TEXT NOT NULL,
    hypothesis           TEXT NOT NULL,
    tokens               INTEGER NOT NULL,
    mel_ms               REAL,
    encoder_ms           REAL,
    decoder_ms_per_token REAL,
    total_ms             REAL NOT NULL,
    audio_s              REAL NOT NULL,
    rtf                  REAL,
    -- A voice pipeline's utterance (v4): VAD over the clip, the LLM's next-word latency on the transcript,
    -- their sum with the ASR's total_ms, the speech the VAD kept, and the words the LLM predicted.
    vad_ms               REAL,
    llm_ms               REAL,
    pipeline_ms          REAL,
    speech_s             REAL,
    continuation         TEXT,
    PRIMARY KEY (cell_id, utt_id)
) WITHOUT ROWID;

-- A nightly's verdict as it judged the run (v5): every check against its baseline, in the nightly's order, so
-- the history site and a rebuilt report show the verdict the nightly gave.  Judged again, the rows are replaced.
CREATE TABLE IF NOT EXISTS checks (
    run_id          TEXT NOT NULL REFERENCES runs(run_id),
    position        INTEGER NOT NULL,
    baseline_run_id TEXT,
    device_id       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL,
    detail          TEXT NOT NULL,
    data_json       TEXT NOT NULL DEFAULT '{}',
    group_name      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, position)
) WITHOUT ROWID;

-- v6: a cell's profiling runs, made after its measured runs with the runtime's operator profiler on (their
-- overhead never enters a sample): each run's own latency per profiled inference, and per operator (an ONNX node,
-- an ExecuTorch kernel call or one delegate call) the backend that ran it and its time over that run.
CREATE TABLE IF NOT EXISTS profile_runs (
    cell_id       INTEGER NOT NULL REFERENCES cells(cell_id),
    profile_index INTEGER NOT NULL,
    iterations    INTEGER NOT NULL,
    latency_json  TEXT NOT NULL,  -- each profiled inference as the run itself timed it, ms
    operators_ms_json TEXT NOT NULL,  -- each profiled inference's operators, summed, ms
    notes         TEXT NOT NULL,
    PRIMARY KEY (cell_id, profile_index)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS operators (
    cell_id       INTEGER NOT NULL REFERENCES cells(cell_id),
    profile_index INTEGER NOT NULL,
    position      INTEGER NOT NULL,  -- slowest total first
    name          TEXT NOT NULL,
    backend       TEXT NOT NULL,  -- XNNPACK, QNN HTP, portable CPU, or an ONNX Runtime execution provider
    op_type       TEXT NOT NULL,
    calls         INTEGER NOT NULL,
    total_ms      REAL NOT NULL,  -- over the run's profiled inferences
    median_ms     REAL NOT NULL,  -- of one call
    PRIMARY KEY (cell_id, profile_index, position)
) WITHOUT ROWID;
