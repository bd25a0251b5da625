-- The audit trail: every certificate handed out, every revocation, every refused call,
-- with who did it (a client certificate's name or a token's label: never the person's
-- data), in which call (the request id) and when. Version 0004 belongs to the
-- applications (issue 10); versions are applied in order whichever arrives first.

CREATE TABLE audit_log (
    id         bigserial   PRIMARY KEY,
    at         timestamptz NOT NULL,
    action     text        NOT NULL CHECK (action IN ('issue', 'revoke', 'refuse')),
    caller     text        NOT NULL CHECK (caller <> ''),
    role       text        CHECK (role IN ('portal', 'partner', 'operator')),
    request_id text        NOT NULL,
    method     text        NOT NULL,
    uvci       text,
    outcome    text
);

COMMENT ON COLUMN audit_log.caller IS
    'the authenticated caller: a certificate name or a token label, never a person';
COMMENT ON COLUMN audit_log.role IS 'NULL for a caller nobody knows (refused as unauthenticated)';
COMMENT ON COLUMN audit_log.outcome IS 'a refusal''s status: UNAUTHENTICATED or PERMISSION_DENIED';

CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_caller_at_idx ON audit_log (caller, at);
