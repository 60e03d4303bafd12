-- attack: return strings with NUL bytes, invalid UTF-8 and lone surrogates
-- result: (b"\x00\xff\xfe", b"\xed\xa0\x80", "a\x00b")
-- expect: ok
return "\0\255\254", "\xED\xA0\x80", "a\0b"
