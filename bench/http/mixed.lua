-- A mix of reads, stopping each thread after LIMIT responses (set by bench/proxy.sh).
local paths = {}
local count = 0
local limit = tonumber(os.getenv("BENCH_REQUESTS_PER_THREAD") or "500000")
local topics = tonumber(os.getenv("BENCH_TOPICS") or "50000")
request = function()
  local r = math.random(1, 10)
  local path
  if r <= 4 then
    path = "/api/v1/forums/topics"
  elseif r <= 7 then
    path = "/api/v1/forums/topics/" .. math.random(1, topics)
  elseif r <= 9 then
    path = "/api/v1/forums/topics/" .. math.random(1, topics) .. "/replies?limit=50"
  else
    path = "/api/v1/forums/categories"
  end
  return wrk.format("GET", path)
end
response = function(status, headers, body)
  count = count + 1
  if count >= limit then wrk.thread:stop() end
end
