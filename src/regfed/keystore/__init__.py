"""Keys and certificates on disk: the signing-key folder, the partners' trust folder and
the secret files (person key, operator token). The codec (``hcert``) never touches files."""
