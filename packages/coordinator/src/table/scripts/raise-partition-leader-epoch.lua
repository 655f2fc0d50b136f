-- raisePartitionLeaderEpoch: a new leader takes one partition's slot before its first commit (Redis
-- Cluster, where the partition's keys and the lease live in different slots, maybe on other masters).
-- From then on an older leader's bumpPartitionEpoch in this slot is refused.
-- KEYS[1] the partition's leader epoch   <prefix>:{p<n>}:leader-epoch
-- KEYS[2] the partition's owner epoch    <prefix>:{p<n>}:epoch
-- ARGV[1] the caller's leader epoch
-- Returns {1, owner epoch} when the slot's leader epoch is the caller's now (raised, or already it):
-- the owner epoch read in the same step can no longer be moved by an older leader; {0, newer leader
-- epoch} when a newer leader has been here (the caller is deposed: nothing written).
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local mine = tonumber(ARGV[1])
if current > mine then
  return {0, string.format('%d', current)}
end
if current < mine then
  redis.call('SET', KEYS[1], ARGV[1])
end
return {1, redis.call('GET', KEYS[2]) or '0'}
