-- City medical registry, as its owner publishes it for read-only integrations. regfed keeps
-- this copy to build the demo and test databases; table and column names and types are the contract.

CREATE TABLE patients (
    patient_id      bigint      PRIMARY KEY,
    oms_policy      char(16)    UNIQUE,            -- health-insurance policy number, 16 digits
    snils           char(11)    UNIQUE,            -- personal insurance number, 11 digits, no separators
    last_name       text        NOT NULL,          -- Cyrillic, as in the passport
    first_name      text        NOT NULL,
    middle_name     text,                          -- patronymic; NULL when the person has none
    birth_date      date        NOT NULL,
    CHECK (oms_policy IS NOT NULL OR snils IS NOT NULL)
);

CREATE TABLE immunizations (
    immunization_id bigint      PRIMARY KEY,
    patient_id      bigint      NOT NULL REFERENCES patients,
    vaccine         text        NOT NULL,          -- product code, see README "Vaccines"
    component       smallint    NOT NULL CHECK (component >= 1),  -- which component/dose of the series
    administered_on date        NOT NULL,
    facility        text        NOT NULL           -- code of the city facility that gave it
);

CREATE TABLE covid_cases (
    case_id         bigint      PRIMARY KEY,
    patient_id      bigint      NOT NULL REFERENCES patients,
    diagnosed_on    date        NOT NULL,
    confirmed_by    text        NOT NULL CHECK (confirmed_by IN ('PCR', 'ELISA', 'CT', 'DOCUMENTS')),
    recovered_on    date,                          -- NULL while the illness goes on
    CHECK (recovered_on IS NULL OR recovered_on >= diagnosed_on)
);

CREATE TABLE lab_results (
    result_id       bigint      PRIMARY KEY,
    patient_id      bigint      NOT NULL REFERENCES patients,
    test            text        NOT NULL CHECK (test IN ('PCR', 'ELISA_IGG')),
    positive        boolean     NOT NULL,
    sampled_at      timestamptz NOT NULL,
    laboratory      text        NOT NULL
);

CREATE INDEX ON immunizations (patient_id);
CREATE INDEX ON covid_cases (patient_id);
CREATE INDEX ON lab_results (patient_id);
