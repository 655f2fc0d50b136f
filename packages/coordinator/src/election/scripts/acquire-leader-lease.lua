-- acquireLeaderLease: become the coordinator leader when nobody holds the lease, and take the next
-- leader epoch in the same step, so that there is never a leader without its own fencing token.
-- KEYS[1] leader lease          <prefix>:{cluster}:leader        (value = coordinator id, PX lease)
-- KEYS[2] leader epoch counter  <prefix>:{cluster}:leader:epoch
-- ARGV[1] coordinator id   ARGV[2] lease (ms)
-- Returns {1, epoch} when the lease is ours now (at a new epoch, even if it already named us: a
-- holder that lost track of its term never continues an old one), {0, holder} when another holds it.
-- The new epoch is the last one + 1 or Redis's clock in milliseconds, whichever is larger. Workers
-- refuse a leader epoch older than the newest they saw (a deposed leader's), so a Redis that lost
-- its data (restarted without persistence, or an AOF missing its last second) must not hand out an
-- older term again: the clock has moved past every term before, which are far rarer than one per ms.
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return {0, holder}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local epoch = math.max(tonumber(redis.call('GET', KEYS[2]) or '0') + 1, nowMs)
redis.call('SET', KEYS[2], string.format('%d', epoch))
return {1, epoch}
