-- wrk script: POST the AdmissionReview in $BODY_FILE with Content-Type application/json.
-- With DELAY_MS set, each connection waits that long before each request, which
-- throttles the total rate to about connections * 1000 / DELAY_MS requests/s.
-- With UNIQUE=1 every request carries a different pod (its generateName and the
-- request uid change), so no answer can be replayed: the full parse + engine path.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.body = f:read("*a")
f:close()

local delay_ms = tonumber(os.getenv("DELAY_MS") or "")
if delay_ms then
  function delay()
    return delay_ms
  end
end

if os.getenv("UNIQUE") == "1" then
  local n = 0
  local thread_id = tostring(math.random(100000, 999999))
  local head, tail = wrk.body:match('^(.-"generateName":")(.*)$')
  local uhead, utail = head:match('^(.-"uid":")(.*)$')
  function request()
    n = n + 1
    local id = thread_id .. "-" .. n
    local body = uhead .. id .. string.sub(utail, 37) .. "p" .. id .. "-" .. tail
    return wrk.format(nil, nil, nil, body)
  end
end
