-- Adversarial cache keys: every request a different, well-formed cursor.
-- BENCH_PAGE sets the page size; BENCH_FROM/BENCH_TO (microseconds since
-- 2000, the cursor's time) pick where pages start: inside the data's range
-- the pages are full, outside it they are empty (many small entries).
local page = os.getenv("BENCH_PAGE") or "100"
local from = tonumber(os.getenv("BENCH_FROM") or "784167543000000")
local to = tonumber(os.getenv("BENCH_TO") or "849057689915552")
local counter = 0

setup = function(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

init = function()
  math.randomseed(os.time() * 1000 + (seed or 0))
end

request = function()
  local micros = from + math.floor(math.random() * (to - from))
  -- %d: LuaJIT would print large numbers in exponent form.
  local path = string.format("/api/v1/forums/topics?limit=%s&cursor=t1.0.%d.%d", page, micros, math.random(1, 50000))
  return wrk.format("GET", path)
end
