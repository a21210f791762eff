--[[
  Appends events to one transaction's stream if it is at the expected revision, and, atomically with it, either
  records the append in the partition's feed (for the projector to project later) or writes the read model of the
  transaction itself (the appender folded the state already: the feed and the projector have nothing left to do).
  Nothing can come between the append and its record, so the read model converges whatever process dies when.

  KEYS[1] stream LIST of the gid (JSON events, index = revision)
  KEYS[2] feed STREAM of the gid's partition
  KEYS[3] archived marker of the gid (set for a while after its stream moved to the archive)
  KEYS[4] read-model HASH of the gid (v = version, j = summary JSON, m = index member)
  KEYS[5] index ZSET of the partition (scores 0, members `createTime|gid`)
  KEYS[6] wake ZSET of the partition (score = wake time in epoch ms, member = gid)
  KEYS[7] archive-due ZSET of the partition (score = when its stream may leave the live log, member = gid)
  KEYS[8] pass lease of the gid
  ARGV[1] expected revision: revision of the stream's last event, -1 for a stream nobody wrote
  ARGV[2] gid
  ARGV[3] what records the append:
            'feed' a feed entry (g = gid, r = first revision, c = count), projected later
            'row'  the read model, from ARGV[4..9]
            'none' nothing yet: the appender is driving the transaction on at once, and its next append records
                   it (should it die first, the read model still shows the previous version, and the wake time
                   written then brings the recovery sweep)
  ARGV[4] summary JSON ('row')
  ARGV[5] index member ('row')
  ARGV[6] wake time in epoch ms; -1: finished (leaves the wake set) ('row')
  ARGV[7] epoch ms after which the finished transaction leaves the read model, or -1 to keep it ('row')
  ARGV[8] '1' to record that time in the archive-due set instead of as the row's expiry: the Redis log archives
          finished streams, and the archiver drops the row with the stream ('row')
  ARGV[9] '1' to drop the gid's pass lease: the transaction finished under it, nobody needs to drive it;
          `<ttl ms> <token>` to take it (SET PX) for the appender, when the append starts the stream: nobody can
          have been driving a transaction that did not exist; '0' leaves it ('row')
  ARGV[10..] events, one JSON string each (may be none: then only the revision is checked, nothing is written)

  Returns:
    >= 0        revision of the last event after the append (the expected revision when no events were given)
    {-1, rev}   version conflict: the stream is at revision rev (-1: no stream); nothing was written
    {-2}        the stream was just archived (a new stream would reuse its gid); nothing was written
]]
local expected = tonumber(ARGV[1])
local first = 10
local count = #ARGV - first + 1
if count == 0 then
  local actual = redis.call('LLEN', KEYS[1]) - 1
  if actual ~= expected then
    return { -1, actual }
  end
  return actual
end

-- Push first and check the length it answers: one command fewer than LLEN then RPUSH on every append. A conflict
-- (rare) takes the events back out; the script is atomic, so nobody ever sees them.
-- unpack() is bounded by Lua's C stack (about 8000 values): push large appends in chunks.
local chunk = 1000
local length = 0
for i = first, #ARGV, chunk do
  length = redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + chunk - 1, #ARGV)))
end
local actual = length - count - 1
if actual ~= expected then
  redis.call('RPOP', KEYS[1], count)
  return { -1, actual }
end
if actual == -1 and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('DEL', KEYS[1])
  return { -2 }
end
local version = actual + count

local mode = ARGV[3]
if mode == 'feed' then
  redis.call('XADD', KEYS[2], '*', 'g', ARGV[2], 'r', actual + 1, 'c', count)
elseif mode == 'row' then
  -- The stream is at this version now, so any stored row is older: no version guard needed. HSET tells how many
  -- fields it added: none when the row existed, and then the index already lists it (the create time never changes).
  if redis.call('HSET', KEYS[4], 'v', version, 'j', ARGV[4], 'm', ARGV[5]) > 0 then
    redis.call('ZADD', KEYS[5], 0, ARGV[5])
  end
  local wakeAt = tonumber(ARGV[6])
  if wakeAt >= 0 then
    redis.call('ZADD', KEYS[6], wakeAt, ARGV[2])
  else
    redis.call('ZREM', KEYS[6], ARGV[2])
  end
  local expireAt = tonumber(ARGV[7])
  if expireAt >= 0 then
    if ARGV[8] == '1' then
      -- The archiver drops the row with the stream (archive-drop-5.lua), at this same deadline.
      redis.call('ZADD', KEYS[7], expireAt, ARGV[2])
    else
      -- A time already past removes the row at once; compaction drops its index member.
      redis.call('PEXPIREAT', KEYS[4], expireAt)
    end
  end
  local lease = ARGV[9]
  if lease == '1' then
    redis.call('DEL', KEYS[8])
  elseif lease ~= '0' and actual == -1 then
    local ttl, token = string.match(lease, '^(%d+) (.+)$')
    redis.call('SET', KEYS[8], token, 'PX', ttl)
  end
end
return version
