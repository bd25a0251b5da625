-- Revocations published to offline verifiers: only revoked certificates that have not
-- expired yet matter, so a small partial index serves the list.
CREATE INDEX certificates_revoked_live_idx
    ON certificates (valid_until)
    WHERE revoked_at IS NOT NULL;
