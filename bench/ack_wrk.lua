-- wrk script for bench/ack_wrk.sh: a signed issues.opened delivery with a fresh delivery id each time.
-- The signature covers the body only, so one body and one signature serve every request.
local body_file = os.getenv("BENCH_BODY")
local signature = os.getenv("BENCH_SIGNATURE")
local counter = 0

init = function(args)
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-GitHub-Event"] = "issues"
  wrk.headers["X-Hub-Signature-256"] = signature
  wrk.headers["User-Agent"] = "GitHub-Hookshot/wrk"
end

request = function()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = string.format("wrk-%d-%d-%d", os.time(), math.random(1, 1e9), counter)
  return wrk.format(nil, "/webhook")
end
