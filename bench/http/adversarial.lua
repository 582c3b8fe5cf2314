-- Adversarial cache keys: every request a different, well-formed cursor
-- (random position and id), 100 topics per page.
request = function()
  local micros = math.random(1, 900000000) * 1000000 + math.random(0, 999999)
  local path = "/api/v1/forums/topics?limit=100&cursor=t1.0." .. micros .. "." .. math.random(1, 50000)
  return wrk.format("GET", path)
end
