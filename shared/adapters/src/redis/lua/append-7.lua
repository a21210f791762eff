--[[
  Appends events to one transaction's stream if it is at the expected revision, and, atomically with it, either
  records the append in the partition's feed (for the projector to project later) or writes the read model of the
  transaction itself (the appender folded the state already: the feed and the projector have nothing left to do).
  Nothing can come between the append and its record, so the read model converges whatever process dies when.

  KEYS[1] stream LIST of the gid (JSON events, index = revision)
  KEYS[2] feed STREAM of the gid's partition
  KEYS[3] read-model HASH of the gid (v = version, j = summary JSON, m = index member)
  KEYS[4] index ZSET of the partition (scores 0, members `createTime|gid`)
  KEYS[5] wake ZSET of the partition (score = wake time in epoch ms, member = gid)
  KEYS[6] archive-due ZSET of the partition (score = when its stream may leave the live log, member = gid)
  KEYS[7] pass lease of the gid; 'archived' for a while after its stream moved to the archive (archive-drop-5.lua)
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
    {-2}        the stream was just archived (a new stream would reuse its gid); nothing was written (the marker
                stays, for the lease TTL if this append had taken the lease)
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
local mode = ARGV[3]
local lease = ARGV[9]
if actual == -1 then
  -- A new stream: refused under the gid of a transaction just archived, whose marker is in the lease key. A submit
  -- driven at once takes the lease here too, and one SET ... GET both checks the marker and takes the lease.
  local ttl, token
  if mode == 'row' and lease ~= '0' and lease ~= '1' then
    ttl, token = string.match(lease, '^(%d+) (.+)$')
  end
  local held
  if token then
    held = redis.call('SET', KEYS[7], token, 'PX', ttl, 'GET')
  else
    held = redis.call('GET', KEYS[7])
  end
  if held == 'archived' then
    if token then
      redis.call('SET', KEYS[7], 'archived', 'PX', ttl)
    end
    redis.call('DEL', KEYS[1])
    return { -2 }
  end
end
local version = actual + count

if mode == 'feed' then
  redis.call('XADD', KEYS[2], '*', 'g', ARGV[2], 'r', actual + 1, 'c', count)
elseif mode == 'row' then
  -- The stream is at this version now, so any stored row is older: no version guard needed. HSET tells how many
  -- fields it added: none when the row existed, and then the index already lists it (the create time never changes).
  if redis.call('HSET', KEYS[3], 'v', version, 'j', ARGV[4], 'm', ARGV[5]) > 0 then
    redis.call('ZADD', KEYS[4], 0, ARGV[5])
  end
  local wakeAt = tonumber(ARGV[6])
  if wakeAt >= 0 then
    redis.call('ZADD', KEYS[5], wakeAt, ARGV[2])
  else
    redis.call('ZREM', KEYS[5], ARGV[2])
  end
  local expireAt = tonumber(ARGV[7])
  if expireAt >= 0 then
    if ARGV[8] == '1' then
      -- The archiver drops the row with the stream (archive-drop-5.lua), at this same deadline.
      redis.call('ZADD', KEYS[6], expireAt, ARGV[2])
    else
      -- A time already past removes the row at once; compaction drops its index member.
      redis.call('PEXPIREAT', KEYS[3], expireAt)
    end
  end
  if lease == '1' then
    redis.call('DEL', KEYS[7])
  end
end
return version
