-- bumpPartitionEpoch: a new owner epoch for one partition, fenced by the leader epoch kept in the
-- partition's own slot (Redis Cluster; with one Redis, commitAssignment does this under the lease).
-- KEYS[1] the partition's leader epoch   <prefix>:{p<n>}:leader-epoch
-- KEYS[2] the partition's owner epoch    <prefix>:{p<n>}:epoch
-- ARGV[1] the caller's leader epoch
-- ARGV[2] the epoch the caller's table gives the partition now (0 if none)
-- The new epoch is the largest of: the last one + 1, the leader epoch (a term's first epochs follow
-- the clock, see acquire-leader-lease.lua), and the table's + 1 (so that a master failover that lost
-- this slot's last bump cannot make the same leader hand that epoch out twice).
-- Returns the new epoch, or -1 when a newer leader has raised the slot (nothing written): a deposed
-- leader can then neither move the partition nor fence its owner.
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local mine = tonumber(ARGV[1])
if current > mine then
  return -1
end
if current < mine then
  redis.call('SET', KEYS[1], ARGV[1])
end
local epoch = math.max(tonumber(redis.call('GET', KEYS[2]) or '0') + 1, mine, tonumber(ARGV[2]) + 1)
redis.call('SET', KEYS[2], string.format('%d', epoch))
return epoch
