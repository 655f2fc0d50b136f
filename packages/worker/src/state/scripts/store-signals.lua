-- storeSignals: records a batch of agents' signals for open correlations. Each signal is stored
-- unless its correlation is done or the caller no longer owns its partition.
-- For signal i (0-based), KEYS[4i+1..4i+4] and ARGV[6i+1..6i+6]:
--   KEYS  signals hash <prefix>:{p<n>}:signals:<corr_id> · done-marker <prefix>:{p<n>}:done:<corr_id> ·
--         open index <prefix>:{p<n>}:open (sorted set, score = deadline ms) ·
--         epoch <prefix>:{p<n>}:epoch   (n = the correlation's partition; on a Redis Cluster a call
--         holds the signals of one partition only, its keys all in that partition's slot)
--   ARGV  agent · signal JSON · state TTL (s) · corr_id · deadline (ms) · the epoch the caller owns
--         the partition at
-- Returns one verdict per signal, in order: 1 stored, 0 duplicate (agent already stored), -1 fenced
-- (the partition has a newer owner: nothing written), or the done-marker's value (already decided).
-- One call per batch rather than a pipeline of per-signal calls: one command, one reply to parse.
local out = {}
for i = 0, #KEYS / 4 - 1 do
  local k, a = i * 4, i * 6
  local epoch = redis.call('GET', KEYS[k + 4])
  if not epoch then
    epoch = '0'
  end
  local verdict
  if epoch ~= ARGV[a + 6] then
    verdict = -1
  else
    local done = redis.call('GET', KEYS[k + 2])
    if done then
      verdict = done
    elseif redis.call('HSETNX', KEYS[k + 1], ARGV[a + 1], ARGV[a + 2]) == 0 then
      verdict = 0
    else
      redis.call('EXPIRE', KEYS[k + 1], ARGV[a + 3])
      redis.call('ZADD', KEYS[k + 3], 'NX', ARGV[a + 5], ARGV[a + 4])
      verdict = 1
    end
  end
  out[i + 1] = verdict
end
return out
