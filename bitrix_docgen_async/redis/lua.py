"""The Lua scripts that keep the limits in Redis, run atomically by the server.

Both take the time from Redis (``TIME``), never from the caller, so the hosts sharing a budget
may have clocks that drift apart. They mirror :class:`~bitrix_docgen_async.core.ratelimit
.TokenBucket` and :class:`~bitrix_docgen_async.core.ratelimit.OperatingLedger`, with two
additions that sharing needs:

* **Lost state.** Redis may restart without its data. Slots handed out before that are still
  being used, and the portal's bucket may have been full, so a missing bucket is rebuilt from
  the server's uptime: full only once the server has been up for ``ahead`` seconds plus a
  refill, empty before. ``ahead`` bounds how far in the future a slot is ever handed out, which
  makes the rebuild safe. A missing operating ledger on a server younger than the budget's
  window admits one command at a time until a reply brings the portal's own ``operating``.
* **Crashed workers.** A reservation of execution time expires after a while, so a process
  that died with commands in flight does not hold the budget forever.

Numbers cross the script boundary as strings: Redis would truncate a Lua number to an integer.
"""

from __future__ import annotations

__all__ = ["BUCKET_SCRIPT", "LEDGER_SCRIPT"]

_PRELUDE = """
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
-- uptime_in_seconds is the difference of two whole wall-clock seconds, so it can read 1 a few
-- milliseconds after the start: one second off keeps a rebuilt bucket from admitting too early.
local function uptime()
  local info = redis.call('INFO', 'server')
  local whole = tonumber(string.match(info, 'uptime_in_seconds:(%d+)')) or 0
  return math.max(0, whole - 1)
end
local function num(x) return string.format('%.17g', x) end
"""

#: KEYS: the bucket hash. ARGV: op (take | refund | drain), capacity, per_second, ahead.
#: Returns {granted, seconds}: granted 1 with the seconds to wait for the slot, or (take only)
#: granted 0 with the seconds after which a slot within ``ahead`` may be free.
BUCKET_SCRIPT = (
    _PRELUDE
    + """
local key = KEYS[1]
local op = ARGV[1]
local capacity = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local ahead = tonumber(ARGV[4])
local tokens
local saved = redis.call('HMGET', key, 'tokens', 'updated')
if saved[1] then
  tokens = tonumber(saved[1])
  local updated = tonumber(saved[2])
  if now > updated then
    tokens = math.min(capacity, tokens + (now - updated) * rate)
  end
else
  -- Never used, idle until full (the key expires then), or lost in a restart of this server.
  tokens = math.min(capacity, (uptime() - ahead) * rate)
end
local granted = 1
local seconds = 0
if op == 'take' then
  local floor = -ahead * rate
  if tokens - 1 < floor then
    granted = 0
    seconds = (floor - (tokens - 1)) / rate
  else
    tokens = tokens - 1
    if tokens < 0 then seconds = -tokens / rate end
  end
elseif op == 'refund' then
  tokens = math.min(capacity, tokens + 1)
elseif op == 'drain' then
  tokens = math.min(tokens, 0)
end
redis.call('HSET', key, 'tokens', num(tokens), 'updated', num(now))
local ttl = math.ceil(((capacity - tokens) / rate + 1) * 1000)
redis.call('PEXPIRE', key, string.format('%d', ttl))
return {granted, num(seconds)}
"""
)

#: KEYS: the state hash, the bookings zset, the reservations zset (member ``id:seconds``,
#: score the expiry). ARGV: op, limit_s, window_s, utilisation, then by op:
#: reserve: seconds, reservation_ttl -> {1, member} or {0}
#: release: member -> {1}
#: settle: member, actual, ended_ago, operating or '', reset_in or '' -> {1}
#: suspend: seconds -> {1}
#: hint: -> {1, seconds or ''}
LEDGER_SCRIPT = (
    _PRELUDE
    + """
local state, booked, held = KEYS[1], KEYS[2], KEYS[3]
local op = ARGV[1]
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local utilisation = tonumber(ARGV[4])
local total, inflight, suspended, sync
local saved = redis.call('HMGET', state, 'booked', 'inflight', 'suspended', 'sync')
if saved[1] then
  total = tonumber(saved[1])
  inflight = tonumber(saved[2])
  suspended = tonumber(saved[3])
  sync = tonumber(saved[4])
else
  -- A server up for less than a window may have lost this method's bookings in a restart.
  redis.call('DEL', booked, held)
  total, inflight, suspended = 0, 0, 0
  if uptime() < window then sync = 1 else sync = 0 end
end

local function seconds_of(member)
  return tonumber(string.match(member, ':([^:]+)$'))
end

local function expire(zset, sum)
  local gone = redis.call('ZRANGEBYSCORE', zset, '-inf', num(now))
  if #gone > 0 then
    for _, member in ipairs(gone) do sum = sum - seconds_of(member) end
    redis.call('ZREMRANGEBYSCORE', zset, '-inf', num(now))
  end
  if redis.call('ZCARD', zset) == 0 then return 0 end
  return math.max(0, sum)
end

local function book(expires_at, seconds)
  local id = redis.call('HINCRBY', state, 'seq', 1)
  redis.call('ZADD', booked, num(expires_at), id .. ':' .. num(seconds))
  total = total + seconds
end

local function release(member)
  if member ~= '' and redis.call('ZREM', held, member) == 1 then
    inflight = math.max(0, inflight - seconds_of(member))
    if redis.call('ZCARD', held) == 0 then inflight = 0 end
  end
end

-- What the portal's figure holds beyond our bookings is someone else's: it adds a call's time
-- when the call ends, so our reservations in flight are not in it (as OperatingLedger.observe).
local function observe(operating, reset_in)
  total = expire(booked, total)
  if operating > total + 1e-6 then
    local horizon = window
    if reset_in and reset_in > 0 then horizon = reset_in end
    book(now + horizon, operating - total)
  end
end

total = expire(booked, total)
inflight = expire(held, inflight)
local reply = {1}
if op == 'reserve' then
  local seconds = tonumber(ARGV[5])
  local used = total + inflight
  local headroom = math.max(0, limit * utilisation - used)
  local fits = seconds <= headroom or used <= 1e-9
  if now < suspended or (sync == 1 and inflight > 0) or not fits then
    reply = {0}
  else
    local member = redis.call('HINCRBY', state, 'seq', 1) .. ':' .. ARGV[5]
    redis.call('ZADD', held, num(now + tonumber(ARGV[6])), member)
    inflight = inflight + seconds
    reply = {1, member}
  end
elseif op == 'release' then
  release(ARGV[5])
elseif op == 'settle' then
  release(ARGV[5])
  local actual = tonumber(ARGV[6])
  if actual > 0 then book(now - tonumber(ARGV[7]) - actual + window, actual) end
  if ARGV[8] ~= '' then
    observe(tonumber(ARGV[8]), tonumber(ARGV[9]))
    sync = 0
  end
elseif op == 'suspend' then
  local seconds = tonumber(ARGV[5])
  suspended = math.max(suspended, now + seconds)
  observe(limit, seconds)
elseif op == 'hint' then
  local moment = nil
  if suspended > now then moment = suspended end
  local first = redis.call('ZRANGE', booked, 0, 0, 'WITHSCORES')
  if first[2] then
    local expiry = tonumber(first[2])
    if moment == nil or expiry < moment then moment = expiry end
  end
  if moment == nil then reply = {1, ''} else reply = {1, num(math.max(0, moment - now))} end
end

redis.call('HSET', state, 'booked', num(total), 'inflight', num(inflight),
  'suspended', num(suspended), 'sync', sync)
local last = math.max(now, suspended)
for _, zset in ipairs({booked, held}) do
  local tail = redis.call('ZRANGE', zset, -1, -1, 'WITHSCORES')
  if tail[2] then last = math.max(last, tonumber(tail[2])) end
end
-- Kept a window past the last expiry, at most 30 days.
local ttl = string.format('%d', math.min(math.ceil((last - now + window) * 1000), 2592000000))
for _, key in ipairs({state, booked, held}) do redis.call('PEXPIRE', key, ttl) end
return reply
"""
)
