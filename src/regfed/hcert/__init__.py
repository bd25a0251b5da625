"""The HCERT payload codec (EU Digital COVID Certificate format).

QR text = ``"HC1:"`` + base45(zlib(COSE_Sign1(CWT claims))). The modules, bottom up:
``base45`` and ``transliterate`` (pure text), ``keys`` (signing keys on disk), ``cose``
(COSE_Sign1 with ES256), ``payload`` (the hcert map, CWT claims and UVCIs), and
``signer`` (the ``HC1:`` text a caller puts in a QR code).
"""
