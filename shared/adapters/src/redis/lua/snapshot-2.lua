--[[
  Stores a snapshot of one transaction's folded state, if it is newer than the stored one and the stream
  still holds that many events (an archived stream gets no snapshot back).

  KEYS[1] stream LIST of the gid
  KEYS[2] snapshot HASH of the gid (f = format, v = version, s = state JSON)
  ARGV[1] format of the state encoding
  ARGV[2] version: revision of the last event folded into the state
  ARGV[3] state JSON

  Returns 1 when stored, 0 when skipped.
]]
local version = tonumber(ARGV[2])
if redis.call('LLEN', KEYS[1]) <= version then
  return 0
end
local stored = tonumber(redis.call('HGET', KEYS[2], 'v') or '-1')
if stored >= version then
  return 0
end
redis.call('HSET', KEYS[2], 'f', ARGV[1], 'v', ARGV[2], 's', ARGV[3])
return 1
