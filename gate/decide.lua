-- decide.lua: admit, reserve or defer a batch of jobs against several limits, atomically.
-- Loaded once and run with EVALSHA by gate/limiter.py, which documents the key and argument layout.
--
-- KEYS[1]            circuit-breaker flag (exists = open; PTTL = remaining open time)
-- KEYS[2]            ticket counter (INCR): every new job takes the next ticket, its place in line for good
-- KEYS[3]            pending hash: identity -> ticket, for every job holding a reservation (not yet admitted)
-- KEYS[4]            lateness hash {us, at}: how late reserved jobs come back (decaying maximum)
-- per record i       KEYS[b+1] slot key ("slot_us ticket"), KEYS[b+2] forwarded mark, KEYS[b+3 .. b+2+L] limit
--                    keys, with b = 4 + (i-1) * (2 + L)
-- ARGV[1]            1 = reserve future slots for throttled jobs, 0 = do not
-- ARGV[2]            reservation horizon (us): slots further away are not reserved
-- ARGV[3]            breaker retry (ms) when the flag has no TTL
-- ARGV[4]            grace (ms) a slot key outlives its slot (redelivery must not take a second slot)
-- ARGV[5]            L, number of limits; then per limit: kind ('w' window | 'b' token bucket), N, W (us),
--                    G (us): the least guard added to W when placing a future slot, absorbing the lag between
--                    a slot and the moment its job is received again. The guard grows to the lateness actually
--                    observed (at most W/2): jobs that come back late in a bunch then do not spill into the
--                    next group's window, which would cost the next group a hop.
-- ARGV[6+4L]         n, number of records; then n members (the jobs' stable identities)
--
-- Returns {now_us, then per record: status, retry_us, remaining, slot_us}. Status codes are Status in
-- gate/limiter.py. Time is Redis TIME; the caller's clock is never used.
--
-- Entries of a sliding log are admissions (at their real admission time) or reservations (a future, or
-- overdue, slot; the member is in the pending hash with its ticket). An admission at `now` always counts every
-- admission, so "at most N in any W" holds on real admission times whatever the reservations do. A new job also
-- counts every reservation (it queues behind all of them). A job coming back for its slot counts admissions and
-- only the reservations of EARLIER tickets: a later reservation never makes it lose its place. If it cannot go
-- now (it came back late and the window filled meanwhile), it is re-slotted at the earliest time the earlier
-- tickets leave free, usually one small hop, and keeps its ticket; the later tickets it overlaps adapt the same
-- way when they come back. A reservation holds its capacity from its slot until the guard has passed; a job
-- later than that is not waited for (its unused capacity would be wasted and the backlog would grow), it keeps
-- its ticket and is re-slotted when back. Receives per job therefore stay O(1) however long the backlog is.

local function fmt(x) return string.format('%.0f', x) end

-- HMGET / HDEL in chunks: unpack() of a huge list would overflow Lua's stack.
local CHUNK = 1000
local function chunked(command, key, members)
  local out = {}
  for from = 1, #members, CHUNK do
    local part = redis.call(command, key, unpack(members, from, math.min(#members, from + CHUNK - 1)))
    if type(part) == 'table' then
      for _, v in ipairs(part) do out[#out + 1] = v end
    end
  end
  return out
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local reserve = ARGV[1] == '1'
local horizon = tonumber(ARGV[2])
local breaker_default_us = tonumber(ARGV[3]) * 1000
local grace_ms = tonumber(ARGV[4])
local L = tonumber(ARGV[5])
local TICKETS, PENDING, LATENESS = KEYS[2], KEYS[3], KEYS[4]
local FIRST = 4
local kinds, caps, windows, guards = {}, {}, {}, {}
for j = 1, L do
  kinds[j] = ARGV[5 + 4 * (j - 1) + 1]
  caps[j] = tonumber(ARGV[5 + 4 * (j - 1) + 2])
  windows[j] = tonumber(ARGV[5 + 4 * (j - 1) + 3])
  guards[j] = tonumber(ARGV[5 + 4 * (j - 1) + 4])
end
local n_at = 6 + 4 * L
local n = tonumber(ARGV[n_at])
local stride = 2 + L
local pending_ttl = 0

-- Lateness of returning reserved jobs: a maximum that decays with a time constant of 10 windows.
local longest = 0
for j = 1, L do longest = math.max(longest, windows[j]) end
local late_raw = redis.call('HMGET', LATENESS, 'us', 'at')
local late, late_changed = 0, false
if late_raw[1] and late_raw[2] then
  late = tonumber(late_raw[1]) * math.exp(-math.max(0, now - tonumber(late_raw[2])) / (10 * longest))
end
local function observe_lateness(us)
  if us > late then late, late_changed = us, true end
end
local function guard(j)
  return math.max(guards[j], math.min(late, windows[j] / 2))
end
local out = {now}
local breaker_pttl = redis.call('PTTL', KEYS[1])
local trimmed = {}

-- Token bucket (the seed's TokenBucketState hash); tokens below zero are reserved slots (debt).
local function bucket_state(key, cap, w)
  local rate = cap / (w / 1000000)
  local h = redis.call('HMGET', key, 'tokens', 'timestamp')
  local tokens, ts = tonumber(h[1]), tonumber(h[2])
  if tokens == nil or ts == nil then return cap, rate end
  local elapsed = math.max(0, now / 1000000 - ts)
  return math.min(cap, tokens + elapsed * rate), rate
end

local function bucket_take(key, cap, w)
  local tokens, rate = bucket_state(key, cap, w)
  tokens = tokens - 1
  redis.call('HSET', key, 'tokens', string.format('%.6f', tokens),
    'timestamp', string.format('%.6f', now / 1000000), 'capacity', cap, 'refill_rate', string.format('%.6f', rate))
  redis.call('PEXPIRE', key, math.ceil((cap - tokens) / rate * 1000) + 1000)
end

-- Sliding log: members are identities, scores admission times (past) or reserved slots. Inserting t is allowed
-- iff no N counted entries lie with t inside one window of W. `ticket` nil counts every entry; else the
-- reservations of tickets after it are not counted. On failure, returns the first time worth trying next: no t'
-- in [c, jump) can be feasible for this limit.
-- The scores of the entries that count. A new job (ticket nil) counts all but expired reservations, so only
-- entries older than `expired` are looked up; a returning job looks up every entry's ticket.
local function counted(raw, ticket, expired)
  local members, idx = {}, {}
  for i = 1, #raw, 2 do
    if ticket ~= nil or tonumber(raw[i + 1]) < expired then
      members[#members + 1] = raw[i]
      idx[#idx + 1] = (i + 1) / 2
    end
  end
  local tickets = {}
  if #members > 0 then
    local got = chunked('HMGET', PENDING, members)
    for k = 1, #idx do tickets[idx[k]] = got[k] end
  end
  local e = {}
  for i = 1, #raw / 2 do
    local t, at = tonumber(tickets[i]), tonumber(raw[2 * i])
    if t == nil or (at >= expired and (ticket == nil or t < ticket)) then e[#e + 1] = at end
  end
  return e
end

local function window_check(key, cap, w, c, ticket, expired)
  local raw = redis.call('ZRANGEBYSCORE', key, fmt(c - w + 1), fmt(c + w - 1), 'WITHSCORES')
  if #raw / 2 < cap then return true, c end
  local e = counted(raw, ticket, expired)
  local m = #e
  if m < cap then return true, c end
  local p = 0
  for i = 1, m do
    if e[i] <= c then p = i end
  end
  local jump = nil
  for j = 0, cap do
    local first, last = p - j + 1, p + cap - j
    if first >= 1 and last <= m and math.max(e[last], c) - math.min(e[first], c) < w then
      if jump == nil or e[first] + w > jump then jump = e[first] + w end
    end
  end
  if jump == nil then return true, c end
  return false, jump
end

-- Entries older than W (+ guard) no longer matter. A reservation that old belongs to a job far overdue: it
-- leaves the pending hash too (its ticket stays in its slot key, so the job keeps its place when it is back).
local function trim(key, w)
  if not trimmed[key] then
    local old = redis.call('ZRANGEBYSCORE', key, '-inf', fmt(now - w))
    if #old > 0 then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(now - w))
      chunked('HDEL', PENDING, old)
    end
    trimmed[key] = true
  end
end

local function remaining_now(base)
  local best = nil
  for j = 1, L do
    local key, r = KEYS[base + 2 + j], 0
    if kinds[j] == 'b' then
      r = math.floor(math.max(0, (bucket_state(key, caps[j], windows[j]))))
    else
      r = math.max(0, caps[j] - redis.call('ZCOUNT', key, fmt(now - windows[j] + 1), fmt(now + windows[j] - 1)))
    end
    if best == nil or r < best then best = r end
  end
  return best or 0
end

local function release(base, member)
  for j = 1, L do
    if kinds[j] == 'w' then redis.call('ZREM', KEYS[base + 2 + j], member) end
  end
  redis.call('HDEL', PENDING, member)
  redis.call('DEL', KEYS[base + 1])
end

-- A deferred job comes back after whole DelaySeconds: reserve slots a whole number of seconds from now, so
-- the slot is when the job is visible again rather than up to a second before it.
local function aligned(c)
  if c <= now then return c end
  return now + math.ceil((c - now) / 1000000) * 1000000
end

-- Earliest time >= now at which every limit admits one more, or nil past the horizon. The job's own entry is
-- removed first. Buckets are skipped for a job that already holds its token (its reserved slot has come).
-- `ticket` (nil: count everything) leaves later tickets' reservations uncounted, as in window_check.
local function earliest(base, member, with_buckets, ticket)
  local c = now
  for j = 1, L do
    local key = KEYS[base + 2 + j]
    if kinds[j] == 'b' then
      if with_buckets then
        local tokens, rate = bucket_state(key, caps[j], windows[j])
        if tokens < 1 then c = math.max(c, aligned(now + math.ceil((1 - tokens) / rate * 1000000))) end
      end
    else
      trim(key, windows[j] + math.max(guards[j], windows[j] / 2))
      redis.call('ZREM', key, member)
    end
  end
  for _ = 1, 100000 do
    if c - now > horizon then return nil end
    local next_c, ok_all = c, true
    for j = 1, L do
      if kinds[j] == 'w' then
        local w = windows[j]
        if c > now then w = w + guard(j) end
        local ok, jump = window_check(KEYS[base + 2 + j], caps[j], w, c, ticket, now - guard(j))
        if not ok then
          ok_all = false
          if jump > next_c then next_c = jump end
        end
      end
    end
    if ok_all then return c end
    c = aligned(next_c)
  end
  return nil
end

local function commit(base, member, c, with_buckets, ticket)
  for j = 1, L do
    local key = KEYS[base + 2 + j]
    if kinds[j] == 'b' then
      if with_buckets then bucket_take(key, caps[j], windows[j]) end
    else
      redis.call('ZADD', key, fmt(c), member)
      local ttl = math.ceil((c - now + windows[j]) / 1000) + 1000
      if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
    end
  end
  if c > now then
    redis.call('HSET', PENDING, member, fmt(ticket))
    local ttl = math.ceil((c - now) / 1000) + grace_ms
    if ttl > pending_ttl then pending_ttl = ttl end
  else
    redis.call('HDEL', PENDING, member)
  end
  redis.call('SET', KEYS[base + 1], fmt(c) .. ' ' .. fmt(ticket), 'PX', math.ceil((c - now) / 1000) + grace_ms)
end

-- The slot key holds "slot_us ticket" (a key of an older version holds only the slot: ticket 0, first in line).
local function slot_of(base)
  local raw = redis.call('GET', KEYS[base + 1])
  if not raw then return nil, nil end
  local slot, ticket = string.match(raw, '^(%d+) (%d+)$')
  if slot == nil then return tonumber(raw), 0 end
  return tonumber(slot), tonumber(ticket)
end

local function decide(base, member)
  if redis.call('EXISTS', KEYS[base + 2]) == 1 then return 7, 0, 0 end
  local s, ticket = slot_of(base)
  if breaker_pttl ~= -2 then
    if s ~= nil and s > now then release(base, member) end
    if breaker_pttl == -1 then return 6, breaker_default_us, 0 end
    return 6, breaker_pttl * 1000, 0
  end
  if s ~= nil and s > now then return 4, s - now, s end
  -- A job whose slot has come is admitted at the actual time if every window allows that instant counting
  -- admissions and earlier tickets; else (it came back late and the window filled) it is re-slotted, keeping
  -- its ticket. A new job takes the next ticket and counts everything. Windows record real admission times.
  local fresh = s == nil
  if fresh then
    ticket = redis.call('INCR', TICKETS)
  elseif redis.call('HEXISTS', PENDING, member) == 1 then
    observe_lateness(now - s)
  end
  local c = earliest(base, member, fresh, (not fresh) and ticket or nil)
  if c ~= nil and c <= now then
    commit(base, member, now, fresh, ticket)
    if fresh then return 1, 0, now end
    return 2, 0, now
  end
  if c ~= nil and (reserve or not fresh) then
    commit(base, member, c, fresh, ticket)
    return 3, c - now, c
  end
  if not fresh then redis.call('HDEL', PENDING, member) end
  if c == nil then return 5, horizon, 0 end
  return 5, c - now, 0
end

for i = 1, n do
  local base = FIRST + (i - 1) * stride
  local status, retry, slot = decide(base, ARGV[n_at + i])
  table.insert(out, status)
  table.insert(out, retry)
  table.insert(out, remaining_now(base))
  table.insert(out, slot)
end
if late_changed then
  redis.call('HSET', LATENESS, 'us', fmt(late), 'at', fmt(now))
  redis.call('PEXPIRE', LATENESS, math.ceil(30 * longest / 1000))
end
if pending_ttl > 0 and redis.call('PTTL', PENDING) < pending_ttl then redis.call('PEXPIRE', PENDING, pending_ttl) end
return out
