-- wrk script: POST the AdmissionReview in $BODY_FILE with Content-Type application/json.
-- With DELAY_MS set, each connection waits that long before each request, which
-- throttles the total rate to about connections * 1000 / DELAY_MS requests/s.
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
