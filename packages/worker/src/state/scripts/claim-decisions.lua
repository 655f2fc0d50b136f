-- claimDecisions: the fenced write that lets exactly one owner decide a correlation, for a batch.
-- For correlation i (0-based), KEYS[2i+1] partition epoch <prefix>:{p<n>}:epoch,
-- KEYS[2i+2] done-marker <prefix>:{p<n>}:done:<corr_id> (n = its partition; on a Redis Cluster a call
-- holds the correlations of one partition only); ARGV[1] marker TTL (s), then per correlation
-- ARGV[2i+2] the epoch the caller owns the partition at, ARGV[2i+3] marker value
-- "pending|<epoch>|<worker>|<agents>".
-- Returns one {kind, value} per correlation, in order: {'fenced', current epoch} when the caller's
-- epoch is stale, {'claimed', ''} when the marker was set now, or {'exists', marker} when the
-- correlation was already claimed.
local out = {}
for i = 0, #KEYS / 2 - 1 do
  local current = redis.call('GET', KEYS[2 * i + 1])
  if not current then
    current = '0'
  end
  if current ~= ARGV[2 * i + 2] then
    out[i + 1] = {'fenced', current}
  elseif redis.call('SET', KEYS[2 * i + 2], ARGV[2 * i + 3], 'NX', 'EX', ARGV[1]) then
    out[i + 1] = {'claimed', ''}
  else
    out[i + 1] = {'exists', redis.call('GET', KEYS[2 * i + 2])}
  end
end
return out
