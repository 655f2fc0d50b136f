-- storeAndClaim: storeSignals, then claimDecisions for the correlations that batch completes, in one
-- script run and one round trip. The functions storeSignals(KEYS, ARGV) and claimDecisions(KEYS, ARGV)
-- are those two scripts' own text, wrapped (correlation-store.ts): their rules are not repeated here.
-- Used with one Redis or Sentinel only: on a Redis Cluster a script may not cross slots, and the two
-- calls go separately, per partition.
-- ARGV[1] number of storeSignals's keys, ARGV[2] number of its arguments. KEYS: storeSignals's keys,
-- then claimDecisions's. ARGV from 3: storeSignals's arguments, then claimDecisions's.
-- Returns {storeSignals's reply, claimDecisions's reply}.
local storeKeys, storeArgs = tonumber(ARGV[1]), tonumber(ARGV[2])
local sk, sa, ck, ca = {}, {}, {}, {}
for i = 1, storeKeys do
  sk[i] = KEYS[i]
end
for i = storeKeys + 1, #KEYS do
  ck[i - storeKeys] = KEYS[i]
end
for i = 1, storeArgs do
  sa[i] = ARGV[i + 2]
end
for i = storeArgs + 3, #ARGV do
  ca[i - storeArgs - 2] = ARGV[i]
end
return {storeSignals(sk, sa), claimDecisions(ck, ca)}
