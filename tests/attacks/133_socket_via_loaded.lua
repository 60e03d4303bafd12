-- attack: look for a preloaded socket module anywhere reachable
-- expect: ok
-- result: 'nil nil nil'
return ("%s %s %s"):format(tostring(rawget(_G, "socket")), tostring(rawget(_G, "package")),
  tostring(rawget(_G, "net")))
