-- attack: return a wide table with odd keys (floats, booleans, huge and negative ints)
-- expect: ok
-- result: {0: 5, True: 2, 4611686018427387904: 3, 1.5: 1, -1: 4}
return { [1.5] = 1, [true] = 2, [1 << 62] = 3, [-1] = 4, [0] = 5 }
