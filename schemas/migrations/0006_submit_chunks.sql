-- 0006_submit_chunks.sql — a submission is inserted in chunks (one short
-- write transaction each) while its job is 'validating' (invisible to claims
-- and listings), then flipped to queued in one small transaction. These
-- columns let any later command find and remove the rows of a submission
-- whose process died:
--   submitter:           'host:pid:random' of the submitting process while the
--                        job is 'validating' (NULL afterwards and before 0006);
--   submit_heartbeat_at: unix seconds (REAL) of its last committed chunk.
ALTER TABLE jobs ADD COLUMN submitter TEXT;
ALTER TABLE jobs ADD COLUMN submit_heartbeat_at REAL;
