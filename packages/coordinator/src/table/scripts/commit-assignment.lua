-- commitAssignment: the leader's one write to the assignment, fenced by its term.
-- KEYS[1] leader lease   KEYS[2] leader epoch counter   KEYS[3] assignment hash   KEYS[4] table version
-- KEYS[4+i] the partition epoch key (<prefix>:{p<n>}:epoch) of the i-th entry of ARGV[3]; one Redis
--           only: on a Redis Cluster no epoch key is passed (another slot), every entry comes with
--           bump = false and its epoch already moved by bumpPartitionEpoch in its partition's slot
-- ARGV[1] coordinator id   ARGV[2] the caller's leader epoch
-- ARGV[3] JSON array of entries {partition, owner (id or null), phase, next (id or null), epoch, bump}
-- An entry with bump = true takes a new partition epoch (a change of owner fences the old one out):
-- the last one + 1, or the leader epoch if that is larger, so that a partition epoch is never handed
-- out twice even when Redis lost its data (the leader epoch follows the clock past every earlier
-- term, see acquire-leader-lease.lua); otherwise it stores the epoch given. The table version is
-- INCR'd once.
-- Returns {version, epoch_1, ..., epoch_n}, or {-1} when the caller no longer leads (nothing written),
-- so that a deposed leader (paused, partitioned) can never move a partition or fence its owner.
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[2] then
  return {-1}
end
local entries = cjson.decode(ARGV[3])
local result = {0}
for i, entry in ipairs(entries) do
  local epoch = entry.epoch
  if entry.bump then
    epoch = math.max(tonumber(redis.call('GET', KEYS[4 + i]) or '0') + 1, tonumber(ARGV[2]))
    redis.call('SET', KEYS[4 + i], string.format('%d', epoch))
  end
  local state = { partition = entry.partition, owner = entry.owner, epoch = epoch, phase = entry.phase, next = entry.next }
  redis.call('HSET', KEYS[3], tostring(entry.partition), cjson.encode(state))
  result[i + 1] = epoch
end
result[1] = redis.call('INCR', KEYS[4])
return result
