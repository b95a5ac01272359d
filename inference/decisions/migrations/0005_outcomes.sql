-- Loan outcomes coming back (POST /outcomes, python -m monitoring outcomes load), beside the decisions.
-- One outcome per id: a second identical one is a duplicate, a contradicting one a conflict.
CREATE TABLE outcomes (
    id_kind text NOT NULL CHECK (id_kind IN ('application_id', 'request_id')),
    id text NOT NULL,
    defaulted boolean NOT NULL,
    observed_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id_kind, id)
);
