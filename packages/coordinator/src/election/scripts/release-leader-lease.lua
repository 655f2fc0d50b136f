-- releaseLeaderLease: step down at once (SIGTERM) so that a standby need not wait for the lease to
-- expire; deletes the lease only while it is still ours, in the term we hold.
-- KEYS[1] leader lease   KEYS[2] leader epoch counter
-- ARGV[1] coordinator id   ARGV[2] our leader epoch
-- Returns 1 when deleted, 0 when it was no longer ours (nothing changed).
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
