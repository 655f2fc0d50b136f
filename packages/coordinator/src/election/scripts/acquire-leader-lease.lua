-- acquireLeaderLease: become the coordinator leader when nobody holds the lease, and take the next
-- leader epoch in the same step, so that there is never a leader without its own fencing token.
-- KEYS[1] leader lease          <prefix>:leader        (value = coordinator id, PX lease)
-- KEYS[2] leader epoch counter  <prefix>:leader:epoch
-- ARGV[1] coordinator id   ARGV[2] lease (ms)
-- Returns {1, epoch} when the lease is ours now (at a new epoch, even if it already named us: a
-- holder that lost track of its term never continues an old one), {0, holder} when another holds it.
-- A missing counter starts at Redis's clock in milliseconds, not at 0: workers refuse a leader epoch
-- older than the newest they saw, so after a Redis that lost its data (restarted without
-- persistence) the next term must still be newer than every term before it. Terms are far rarer
-- than one per millisecond, so a count that started earlier is always behind the clock.
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return {0, holder}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 0 then
  local now = redis.call('TIME')
  redis.call('SET', KEYS[2], now[1] .. string.format('%03d', math.floor(tonumber(now[2]) / 1000)))
end
return {1, redis.call('INCR', KEYS[2])}
