-- A certificate's signing key is kept as the 8-byte kid it is: base64 is how the API
-- shows a kid, not how it is stored (migration 0001 kept the base64 text).
ALTER TABLE certificates DROP CONSTRAINT certificates_key_id_check;
ALTER TABLE certificates RENAME COLUMN key_id TO kid;
ALTER TABLE certificates ALTER COLUMN kid TYPE bytea USING decode(kid, 'base64');
ALTER TABLE certificates ADD CONSTRAINT certificates_kid_length CHECK (octet_length(kid) = 8);
COMMENT ON COLUMN certificates.kid IS 'the 8-byte COSE kid of the signing certificate';
