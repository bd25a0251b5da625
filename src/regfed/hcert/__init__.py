"""The HCERT payload codec (EU Digital COVID Certificate format).

QR text = ``"HC1:"`` + base45(zlib(COSE_Sign1(CWT claims))). The modules, bottom up:
``labels`` (the wire format's numbers and strings, once), ``base45`` and
``transliterate`` (pure text), ``keys`` (signing keys in memory), ``cose`` (COSE_Sign1
and the bytes a signature covers), ``payload`` (the hcert map, CWT claims and UVCIs),
``signer`` (the ``HC1:`` text a caller puts in a QR code); and to verify: ``decode``
(the container, strictly), ``trust`` (trusted keys from certificates), ``claims`` (what a
signed code says) and ``verify`` (the rules, in order). Files are ``regfed.keystore``'s.
"""
