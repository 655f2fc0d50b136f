-- renewLeaderLease: extend the leader lease only while it is still ours, in the term we hold.
-- KEYS[1] leader lease   KEYS[2] leader epoch counter
-- ARGV[1] coordinator id   ARGV[2] lease (ms)   ARGV[3] our leader epoch
-- Returns 1 when extended, 0 when the lease expired, names another coordinator or a newer term began.
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
