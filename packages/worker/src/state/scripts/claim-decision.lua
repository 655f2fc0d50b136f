-- claimDecision: the fenced write that lets exactly one owner decide a correlation.
-- KEYS[1] partition epoch  orchestrator:epoch:<partition>
-- KEYS[2] done-marker      orchestrator:done:<corr_id>
-- ARGV[1] the epoch the caller owns the partition at
-- ARGV[2] marker value "pending|<epoch>|<worker>|<agents>"   ARGV[3] marker TTL (s)
-- Returns {'fenced', current epoch} when the caller's epoch is stale, {'claimed', ''} when the
-- marker was set now, or {'exists', marker} when the correlation was already claimed.
local current = redis.call('GET', KEYS[1])
if not current then
  current = '0'
end
if current ~= ARGV[1] then
  return {'fenced', current}
end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'EX', ARGV[3]) then
  return {'claimed', ''}
end
return {'exists', redis.call('GET', KEYS[2])}
