-- markPublished: the decision is on JetStream; close the correlation.
-- KEYS[1] done-marker   KEYS[2] open index of its partition
-- ARGV[1] marker value "published|<agents>"   ARGV[2] corr_id   ARGV[3] marker TTL (s)
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
