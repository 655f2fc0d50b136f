-- readHeartbeats: the heartbeats of the workers in the index, and the index cleaned of the dead.
-- KEYS[1] the worker index (set of ids)   KEYS[1+i] the heartbeat key of worker ARGV[i]
-- Returns {value, pttl} per worker, in order; {false, -2} for a worker whose key expired, which is
-- removed from the index in the same step (a worker that heartbeats again adds itself back).
local out = {}
for i = 1, #ARGV do
  local value = redis.call('GET', KEYS[i + 1])
  if value then
    out[i] = {value, redis.call('PTTL', KEYS[i + 1])}
  else
    redis.call('SREM', KEYS[1], ARGV[i])
    out[i] = {false, -2}
  end
end
return out
