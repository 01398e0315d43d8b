-- harness results store.  Raw samples are the source of truth; every statistic in a
-- report is recomputed from them, so reports can be rebuilt without rerunning.
-- PRAGMA user_version holds the schema version (see db.py).

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
    status             TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'timeout', 'crashed')),
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
    UNIQUE (run_id, cell_key)
);

-- Every iteration's latency: warm-ups are stored (phase='warmup') but never enter statistics.
CREATE TABLE IF NOT EXISTS samples (
    cell_id    INTEGER NOT NULL REFERENCES cells(cell_id),
    phase      TEXT NOT NULL CHECK (phase IN ('warmup', 'measured')),
    idx        INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    PRIMARY KEY (cell_id, phase, idx)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS thermal_samples (
    cell_id INTEGER NOT NULL REFERENCES cells(cell_id),
    t_s     REAL NOT NULL,
    sensor  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    value   REAL NOT NULL,
    unit    TEXT NOT NULL
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
    PRIMARY KEY (cell_id, utt_id)
) WITHOUT ROWID;

-- Derived, recomputable from samples: per-cell median and P95 so that a year of history can be
-- charted without reading millions of samples.  Filled when a cell is stored (older cells lazily).
CREATE TABLE IF NOT EXISTS cell_stats (
    cell_id INTEGER PRIMARY KEY REFERENCES cells(cell_id),
    n       INTEGER NOT NULL,
    p50_ms  REAL NOT NULL,
    p95_ms  REAL NOT NULL
);
