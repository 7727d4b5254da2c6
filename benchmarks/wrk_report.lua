-- wrk script: sends the requests listed in the file named by WRK_REQUESTS in turn and prints a
-- JSON summary. Each line of that file is METHOD<TAB>PATH<TAB>BODY; "{n}" in a body becomes a
-- number unique to the request, so every trigger names a new record. Run wrk with one thread
-- (-t1) so the counter and the list are shared by every connection.

local requests = {}
local position = 0
local counter = 0

local headers = {}
local cookie = os.getenv("WRK_COOKIE")
if cookie and cookie ~= "" then
  headers["Cookie"] = cookie
end
local csrf = os.getenv("WRK_CSRF")
if csrf and csrf ~= "" then
  headers["X-CSRFToken"] = csrf
end

for line in io.lines(os.getenv("WRK_REQUESTS")) do
  local method, path, body = line:match("^([^\t]*)\t([^\t]*)\t?(.*)$")
  if method then
    table.insert(requests, { method = method, path = path, body = body })
  end
end

request = function()
  position = position % #requests + 1
  counter = counter + 1
  local entry = requests[position]
  local request_headers = {}
  for name, value in pairs(headers) do
    request_headers[name] = value
  end
  local body = nil
  if entry.method == "POST" then
    body = entry.body:gsub("{n}", tostring(counter))
    request_headers["Content-Type"] = "application/x-www-form-urlencoded"
  end
  return wrk.format(entry.method, entry.path, request_headers, body)
end

done = function(summary, latency, requests_done)
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, '
      .. '"max_us": %d, "status_errors": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  ))
end
