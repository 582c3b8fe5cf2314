-- A mix of reads; bench/proxy.sh stops it after 1,000,000 requests.
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
