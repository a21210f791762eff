--[[
  Appends events to one transaction's stream if it is at the expected revision, and records the append
  in the partition's feed, atomically: the feed never shows an append that is not in the stream, nor misses one.

  KEYS[1] stream LIST of the gid (JSON events, index = revision)
  KEYS[2] feed STREAM of the gid's partition
  KEYS[3] archived marker of the gid (set for a while after its stream moved to the archive)
  ARGV[1] expected revision: revision of the stream's last event, -1 for a stream nobody wrote
  ARGV[2] gid, recorded in the feed entry
  ARGV[3..] events, one JSON string each (may be none: then only the revision is checked)

  Returns:
    >= 0        revision of the last event after the append (the expected revision when no events were given)
    {-1, rev}   version conflict: the stream is at revision rev (-1: no stream); nothing was written
    {-2}        the stream was just archived (a new stream would reuse its gid); nothing was written
]]
local actual = redis.call('LLEN', KEYS[1]) - 1
local expected = tonumber(ARGV[1])
if actual ~= expected then
  return { -1, actual }
end
if actual == -1 and redis.call('EXISTS', KEYS[3]) == 1 then
  return { -2 }
end

local count = #ARGV - 2
if count == 0 then
  return actual
end

-- unpack() is bounded by Lua's C stack (about 8000 values): push large appends in chunks.
local chunk = 1000
for i = 3, #ARGV, chunk do
  redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + chunk - 1, #ARGV)))
end

redis.call('XADD', KEYS[2], '*', 'g', ARGV[2], 'r', actual + 1, 'c', count)
return actual + count
