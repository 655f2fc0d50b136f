-- storeSignal: records one agent's signal for an open correlation, unless the correlation is done
-- or the caller no longer owns its partition.
-- KEYS[1] signals hash   orchestrator:signals:<corr_id>
-- KEYS[2] done-marker    orchestrator:done:<corr_id>
-- KEYS[3] open index     orchestrator:open:<partition>   (sorted set, score = deadline ms)
-- KEYS[4] epoch          orchestrator:epoch:<partition>
-- ARGV[1] agent  ARGV[2] signal JSON  ARGV[3] state TTL (s)  ARGV[4] corr_id  ARGV[5] deadline (ms)
-- ARGV[6] the epoch the caller owns the partition at
-- Returns 1 stored, 0 duplicate (agent already stored), -1 fenced (the partition has a newer
-- owner: nothing written), or the done-marker's value (already decided).
local epoch = redis.call('GET', KEYS[4])
if not epoch then
  epoch = '0'
end
if epoch ~= ARGV[6] then
  return -1
end
local done = redis.call('GET', KEYS[2])
if done then
  return done
end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[3], 'NX', ARGV[5], ARGV[4])
return 1
