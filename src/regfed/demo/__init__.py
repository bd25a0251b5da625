"""Demo and test data: the registries' DDL, demo people, synthetic populations."""
