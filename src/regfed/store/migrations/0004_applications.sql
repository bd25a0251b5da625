-- Applications: people whose data was missing, re-checked until a code is issued or the
-- application expires (README "Applications").
--
-- Nothing personal is stored in clear. The person is the same keyed hash certificates use
-- (person_key); what a re-check needs (identifiers, names, birth date) and the contact are
-- sealed_person, AES-256-GCM under the key in REGFED_APPLICATION_KEY_FILE (never in this
-- database), bound to the row's id. It exists exactly while the application is open: the
-- statement that closes an application erases it, and a CHECK refuses anything else. An
-- issued application keeps its code sealed the same way (sealed_certificate: the hcert map
-- it was signed over and its basis events; no identifier, no contact).

CREATE TABLE applications (
    id                 uuid        PRIMARY KEY,  -- random (uuid4), never a sequence
    person_key         bytea       NOT NULL CHECK (octet_length(person_key) = 32),
    category           text        NOT NULL
        CHECK (category IN ('vaccination_not_found', 'illness_not_found', 'other')),
    status             text        NOT NULL CHECK (status IN ('pending', 'issued', 'expired')),
    submitted_at       timestamptz NOT NULL,
    checks             integer     NOT NULL DEFAULT 0 CHECK (checks >= 0),
    checked_at         timestamptz,
    next_check_at      timestamptz,
    denial             text        CHECK (denial <> ''),
    closed_at          timestamptz,
    uvci               text        REFERENCES certificates (uvci),
    sealed_person      bytea,
    sealed_certificate bytea,
    -- A reconciler's claim: its random token, until when it holds the row.
    lease_token        bytea,
    lease_until        timestamptz,
    CONSTRAINT applications_closed_when_not_pending
        CHECK ((status = 'pending') = (closed_at IS NULL)),
    CONSTRAINT applications_person_only_while_open
        CHECK ((status = 'pending') = (sealed_person IS NOT NULL)),
    CONSTRAINT applications_next_check_only_while_open
        CHECK ((status = 'pending') = (next_check_at IS NOT NULL)),
    CONSTRAINT applications_issued_with_certificate
        CHECK ((status = 'issued') = (uvci IS NOT NULL AND sealed_certificate IS NOT NULL)),
    CONSTRAINT applications_expired_with_denial
        CHECK (status <> 'expired' OR denial IS NOT NULL),
    CONSTRAINT applications_lease_whole
        CHECK ((lease_token IS NULL) = (lease_until IS NULL))
);

COMMENT ON COLUMN applications.sealed_person IS
    'AES-256-GCM of the identifiers, names, birth date and contact; NULL once closed';
COMMENT ON COLUMN applications.sealed_certificate IS
    'AES-256-GCM of the issued code''s hcert map and basis, re-signed on every read';

-- One open application per person, enforced here: SubmitApplication inserts with
-- ON CONFLICT on this index, so concurrent submissions leave one open row.
CREATE UNIQUE INDEX applications_open_person_uq
    ON applications (person_key)
    WHERE status = 'pending';

-- The reconciler's queue: open applications in the order a claim takes them, so a claim
-- reads the first rows of the index instead of sorting every due row for each batch.
CREATE INDEX applications_due_idx
    ON applications (next_check_at, submitted_at)
    WHERE status = 'pending';

-- Statistics over a window of submission times.
CREATE INDEX applications_submitted_idx ON applications (submitted_at);
