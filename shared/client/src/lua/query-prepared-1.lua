--[[
  The check-back of a two-phase message whose local step ran in Redis (reference §7, DTM's RedisQueryPrepared).

  KEYS[1] the message's barrier key <gid>-00-msg-01
  ARGV[1] expiry of the key, seconds

  Returns 'FAILURE' when the local step never ran (and now never will: the key is sealed as 'rollback'), else 'OK'.
]]
local v = redis.call('GET', KEYS[1])
if v == false then
  redis.call('SET', KEYS[1], 'rollback', 'EX', ARGV[1])
  v = 'rollback'
end
if v == 'rollback' then
  return 'FAILURE'
end
return 'OK'
