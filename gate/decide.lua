-- decide.lua: admit, reserve or defer a batch of jobs against several limits, atomically.
-- Loaded once and run with EVALSHA by gate/limiter.py, which documents the key and argument layout.
--
-- KEYS[1]            circuit-breaker flag (exists = open; PTTL = remaining open time)
-- per record i       KEYS[b+1] slot key, KEYS[b+2] forwarded mark, KEYS[b+3 .. b+2+L] limit keys,
--                    with b = 1 + (i-1) * (2 + L)
-- ARGV[1]            1 = reserve future slots for throttled jobs, 0 = do not
-- ARGV[2]            reservation horizon (us): slots further away are not reserved
-- ARGV[3]            breaker retry (ms) when the flag has no TTL
-- ARGV[4]            grace (ms) a slot key outlives its slot (redelivery must not take a second slot)
-- ARGV[5]            L, number of limits; then per limit: kind ('w' window | 'b' token bucket), N, W (us),
--                    G (us): a guard added to W when placing a future slot, absorbing the lag between a slot
--                    and the moment its job is received again
-- ARGV[6+4L]         n, number of records; then n members (the jobs' stable identities)
--
-- Returns {now_us, then per record: status, retry_us, remaining, slot_us}. Status codes are Status in
-- gate/limiter.py. Time is Redis TIME; the caller's clock is never used.

local function fmt(x) return string.format('%.0f', x) end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local reserve = ARGV[1] == '1'
local horizon = tonumber(ARGV[2])
local breaker_default_us = tonumber(ARGV[3]) * 1000
local grace_ms = tonumber(ARGV[4])
local L = tonumber(ARGV[5])
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

-- Sliding log: members are identities, scores admission times (past, or reserved in the future).
-- Inserting t is allowed iff no N existing entries lie with t inside one window of W. On failure, returns
-- the first time worth trying next: no t' in [c, jump) can be feasible for this limit.
local function window_check(key, cap, w, c)
  local raw = redis.call('ZRANGEBYSCORE', key, fmt(c - w + 1), fmt(c + w - 1), 'WITHSCORES')
  local m = #raw / 2
  if m < cap then return true, c end
  local e, p = {}, 0
  for i = 1, m do
    e[i] = tonumber(raw[2 * i])
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

local function trim(key, w)
  if not trimmed[key] then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(now - w))
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
local function earliest(base, member, with_buckets)
  local c = now
  for j = 1, L do
    local key = KEYS[base + 2 + j]
    if kinds[j] == 'b' then
      if with_buckets then
        local tokens, rate = bucket_state(key, caps[j], windows[j])
        if tokens < 1 then c = math.max(c, aligned(now + math.ceil((1 - tokens) / rate * 1000000))) end
      end
    else
      trim(key, windows[j] + guards[j])
      redis.call('ZREM', key, member)
    end
  end
  for _ = 1, 100000 do
    if c - now > horizon then return nil end
    local next_c, ok_all = c, true
    for j = 1, L do
      if kinds[j] == 'w' then
        local w = windows[j]
        if c > now then w = w + guards[j] end
        local ok, jump = window_check(KEYS[base + 2 + j], caps[j], w, c)
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

local function commit(base, member, c, with_buckets)
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
  redis.call('SET', KEYS[base + 1], fmt(c), 'PX', math.ceil((c - now) / 1000) + grace_ms)
end

local function decide(base, member)
  if redis.call('EXISTS', KEYS[base + 2]) == 1 then return 7, 0, 0 end
  if breaker_pttl ~= -2 then
    local s = tonumber(redis.call('GET', KEYS[base + 1]))
    if s ~= nil and s > now then release(base, member) end
    if breaker_pttl == -1 then return 6, breaker_default_us, 0 end
    return 6, breaker_pttl * 1000, 0
  end
  local s = tonumber(redis.call('GET', KEYS[base + 1]))
  if s ~= nil and s > now then return 4, s - now, s end
  -- A job whose slot has come is admitted at the actual time, if every window still allows that instant
  -- (it may come back late); else it reserves again. Windows thus record real admission times.
  local fresh = s == nil
  local c = earliest(base, member, fresh)
  if c ~= nil and c <= now then
    commit(base, member, now, fresh)
    if fresh then return 1, 0, now end
    return 2, 0, now
  end
  if c ~= nil and (reserve or not fresh) then
    commit(base, member, c, fresh)
    return 3, c - now, c
  end
  if c == nil then return 5, horizon, 0 end
  return 5, c - now, 0
end

for i = 1, n do
  local base = 1 + (i - 1) * stride
  local status, retry, slot = decide(base, ARGV[n_at + i])
  table.insert(out, status)
  table.insert(out, retry)
  table.insert(out, remaining_now(base))
  table.insert(out, slot)
end
return out
