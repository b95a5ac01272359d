-- The desk's own application id (to join outcomes) and the challenger's shadow scores.
ALTER TABLE decisions
    ADD COLUMN application_id text,
    ADD COLUMN challenger_version text,
    ADD COLUMN challenger_probability double precision,
    ADD COLUMN challenger_prediction smallint;
CREATE INDEX decisions_application_id_idx ON decisions (application_id) WHERE application_id IS NOT NULL;
