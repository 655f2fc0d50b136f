-- markPublished: the decisions are on JetStream; close their correlations.
-- For correlation i (0-based), KEYS[2i+1] done-marker, KEYS[2i+2] open index of its partition;
-- ARGV[1] marker TTL (s), then ARGV[2i+2] marker value "published|<agents>", ARGV[2i+3] corr_id.
for i = 0, #KEYS / 2 - 1 do
  redis.call('SET', KEYS[2 * i + 1], ARGV[2 * i + 2], 'EX', ARGV[1])
  redis.call('ZREM', KEYS[2 * i + 2], ARGV[2 * i + 3])
end
return #KEYS / 2
