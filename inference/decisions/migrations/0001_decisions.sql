-- The decision record (docs/CONTRACTS.md): one row per scored applicant or rejected call.
CREATE TABLE decisions (
    ts timestamptz NOT NULL,
    request_id text NOT NULL,
    batch_index integer NOT NULL,          -- 0 for a single applicant or a rejected call
    batch_size integer,
    endpoint text NOT NULL,
    status smallint NOT NULL,
    latency_ms double precision,
    model_latency_ms double precision,
    model_version text,
    threshold double precision,
    probability double precision,
    prediction smallint,                   -- 1 = refused
    error text,
    error_fields text[],
    worker text NOT NULL,                  -- <host>-<pid> of the process that answered
    inputs jsonb,                          -- the validated raw fields, missing as null
    shipped_at timestamptz NOT NULL DEFAULT now(),
    -- A record shipped twice (at least once delivery) is stored once.
    CONSTRAINT decisions_request_id_batch_index_key UNIQUE (request_id, batch_index)
);
CREATE INDEX decisions_ts_idx ON decisions (ts);
CREATE INDEX decisions_model_version_ts_idx ON decisions (model_version, ts);
