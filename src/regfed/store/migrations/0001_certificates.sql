-- Issued certificates and denial counters.
--
-- No raw SNILS, OMS policy, passport number or name is stored anywhere: a person is the
-- keyed HMAC-SHA256 of their strongest identifier (regfed.store.personkey), 32 bytes.

CREATE TABLE certificates (
    uvci              text        PRIMARY KEY CHECK (uvci <> ''),
    person_key        bytea       NOT NULL CHECK (octet_length(person_key) = 32),
    basis_fingerprint bytea       NOT NULL CHECK (octet_length(basis_fingerprint) = 32),
    kind              text        NOT NULL CHECK (kind IN ('vaccination', 'recovery', 'test')),
    valid_from        timestamptz NOT NULL,
    valid_until       timestamptz NOT NULL,
    issued_at         timestamptz NOT NULL,
    key_id            text        NOT NULL CHECK (key_id <> ''),
    sources           text[]      NOT NULL
        CHECK (cardinality(sources) >= 1 AND sources <@ ARRAY['city', 'federal']::text[]),
    degraded          boolean     NOT NULL DEFAULT false,
    revoked_at        timestamptz,
    revocation_reason text,
    CONSTRAINT certificates_validity CHECK (valid_until > valid_from),
    CONSTRAINT certificates_reason_needs_revocation
        CHECK (revocation_reason IS NULL OR revoked_at IS NOT NULL)
);

COMMENT ON COLUMN certificates.person_key IS
    'HMAC-SHA256 of the person''s strongest identifier; never the identifier itself';
COMMENT ON COLUMN certificates.basis_fingerprint IS
    'HMAC-SHA256 of the registry events the certificate rests on';
COMMENT ON COLUMN certificates.key_id IS 'base64 of the 8-byte COSE kid that signed it';

-- Idempotent issuance: at most one live certificate per person and basis, enforced by the
-- database (INSERT ... ON CONFLICT uses it as the arbiter), so concurrent identical requests
-- create one row. Revoked rows are outside the index: a revoked certificate is never the
-- idempotent answer, and a new one can be issued on the same basis. Its leading column
-- also serves lookups of a person's live certificates.
CREATE UNIQUE INDEX certificates_current_uq
    ON certificates (person_key, basis_fingerprint)
    WHERE revoked_at IS NULL;

-- Denials by reason and (Moscow) day, for GetStats; incremented with an upsert.
CREATE TABLE denials (
    reason text   NOT NULL CHECK (reason <> ''),
    day    date   NOT NULL,
    count  bigint NOT NULL DEFAULT 0 CHECK (count >= 0),
    PRIMARY KEY (reason, day)
);
