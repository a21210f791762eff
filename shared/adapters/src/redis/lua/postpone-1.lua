--[[
  Moves an overdue transaction's wake time later, unless a projection changed it meanwhile: the recovery sweep
  re-queued its pass job and looks at it again then, so that the same overdue transactions are not the only
  ones it ever sees (sweep fairness, DESIGN invariant 9).

  KEYS[1] the partition's wake set (ZSET, score = when to drive the transaction next, epoch ms)
  ARGV[1] gid (member)
  ARGV[2] the wake time the sweep read (epoch ms)
  ARGV[3] the new wake time (epoch ms)

  Returns 1 when moved, 0 when the member is gone (finished) or its wake time is no longer ARGV[2].
]]
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
  return 1
end
return 0
