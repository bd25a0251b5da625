-- Federal registry of vaccinations and COVID-19 cases, as its owner publishes it for read-only
-- integrations. regfed keeps this copy to build the demo and test databases; table and column names
-- and types are the contract.

CREATE TABLE citizens (
    id              uuid        PRIMARY KEY,
    snils           varchar(14) UNIQUE,            -- formatted 'XXX-XXX-XXX YY'
    passport        varchar(11) UNIQUE,            -- formatted 'SSSS NNNNNN' (series, space, number)
    surname         text        NOT NULL,          -- Cyrillic
    given_name      text        NOT NULL,
    patronymic      text,
    date_of_birth   date        NOT NULL,
    region_code     smallint    NOT NULL,          -- region of registration, e.g. 77 Moscow, 50 Moscow Oblast
    CHECK (snils IS NOT NULL OR passport IS NOT NULL)
);

CREATE TABLE medical_events (
    id              bigserial   PRIMARY KEY,
    citizen_id      uuid        NOT NULL REFERENCES citizens,
    event_type      text        NOT NULL CHECK (event_type IN ('VACCINATION', 'ILLNESS', 'RECOVERY', 'TEST')),
    event_at        timestamptz NOT NULL,          -- when it happened (a date event is stored at 00:00 Moscow time)
    details         jsonb       NOT NULL,          -- shape depends on event_type, see README
    region_code     smallint    NOT NULL,          -- region where it happened
    recorded_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX ON medical_events (citizen_id, event_type);
