-- What each refused applicant was told: the reasons of the answer (an audit shows them as sent).
ALTER TABLE decisions ADD COLUMN reasons jsonb;
