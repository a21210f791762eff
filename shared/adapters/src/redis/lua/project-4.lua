--[[
  Stores the read model of one transaction at a version, unless a newer or equal version is stored, and keeps
  the partition's list index and wake set in step with it. Projections may replay or race: the version guard
  makes an older summary unable to overwrite a newer one.

  KEYS[1] read-model HASH of the gid (v = version, j = summary JSON, m = index member)
  KEYS[2] index ZSET of the partition (scores 0, members `createTime|gid`)
  KEYS[3] wake ZSET of the partition (score = wake time in epoch ms, member = gid)
  KEYS[4] archive-due ZSET of the partition (score = when its stream may leave the live log, member = gid)
  ARGV[1] version
  ARGV[2] summary JSON
  ARGV[3] index member
  ARGV[4] wake time in epoch ms, or -1 when the transaction is finished (removes it from the wake set)
  ARGV[5] gid
  ARGV[6] expiry in epoch ms for a finished transaction kept only so long (retention), or -1 to keep it;
          a time already past removes the transaction from the read model (the log keeps its history)
  ARGV[7] '1' to record the expiry in the archive-due set instead of as the row's expiry (the Redis log archives
          finished streams; the archiver drops the row with the stream)

  Returns:
    1  written
    0  skipped: the stored version is the same or newer
]]
local version = tonumber(ARGV[1])
local stored = redis.call('HMGET', KEYS[1], 'v', 'm')
if stored[1] and tonumber(stored[1]) >= version then
  return 0
end

-- The create time never changes for a gid, but if it did, a stale member would list the gid twice.
if stored[2] and stored[2] ~= ARGV[3] then
  redis.call('ZREM', KEYS[2], stored[2])
end

redis.call('HSET', KEYS[1], 'v', ARGV[1], 'j', ARGV[2], 'm', ARGV[3])
redis.call('ZADD', KEYS[2], 0, ARGV[3])

local expireAt = tonumber(ARGV[6] or '-1')
if expireAt >= 0 and ARGV[7] == '1' then
  redis.call('ZADD', KEYS[4], expireAt, ARGV[5])
end
if expireAt >= 0 then
  local t = redis.call('TIME')
  local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if expireAt <= nowMs then
    redis.call('DEL', KEYS[1])
    redis.call('ZREM', KEYS[2], ARGV[3])
    redis.call('ZREM', KEYS[3], ARGV[5])
    return 1
  end
  -- Archived streams take their row with them (archive-drop-5.lua); the others expire with retention.
  if ARGV[7] ~= '1' then
    redis.call('PEXPIREAT', KEYS[1], expireAt)
  end
end

local wakeAt = tonumber(ARGV[4])
if wakeAt < 0 then
  redis.call('ZREM', KEYS[3], ARGV[5])
else
  redis.call('ZADD', KEYS[3], wakeAt, ARGV[5])
end
return 1
