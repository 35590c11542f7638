"""The Lua scripts that make each claim, lease and route one atomic step in the engine.

Two hashes under one hash tag hold the whole state, so the data model also runs
on a Redis Cluster:

- ``{chatsh:X}:nodes``: node -> ``"<incarnation> <lease expiry in ms>"``, the
  expiry on the engine's own clock (``TIME``), so machines' clocks never matter;
- ``{chatsh:X}:claims``: name skeleton -> ``"<node> <name>"``.

A claim whose node has no live lease is free to take. An entry of another shape
(anything can write to the engine) counts as absent and is removed where it is
met, so one bad entry never makes the scripts fail. Every script gets
``KEYS = {claims, nodes}``.
"""

from __future__ import annotations

_COMMON = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function lease_of(node)
  local value = redis.call('HGET', KEYS[2], node)
  if not value then return nil, 0 end
  local incarnation, expiry = string.match(value, '^(%S+) (%d+)$')
  if not incarnation then
    redis.call('HDEL', KEYS[2], node)
    return nil, 0
  end
  return incarnation, tonumber(expiry)
end
local function claim_of(skeleton, value)
  local node, name = string.match(value, '^(%S+) (.+)$')
  if not node then redis.call('HDEL', KEYS[1], skeleton) end
  return node, name
end
local live_cache = {}
local function is_live(node, now)
  if not node then return false end
  local known = live_cache[node]
  if known == nil then
    local _, expiry = lease_of(node)
    known = expiry > now
    live_cache[node] = known
  end
  return known
end
local function drop_claims_of(node, keep)
  local claims = redis.call('HGETALL', KEYS[1])
  local prefix = node .. ' '
  for i = 1, #claims, 2 do
    if not keep[claims[i]] and string.sub(claims[i + 1], 1, #prefix) == prefix then
      redis.call('HDEL', KEYS[1], claims[i])
    end
  end
end
local function holds_lease(node, incarnation, now)
  local held, expiry = lease_of(node)
  return held == incarnation and expiry > now
end
"""

REGISTER = _COMMON + """
-- ARGV: node, incarnation, lease ms. 0 when another live process has this node name.
-- A new process under a dead one's node name inherits none of its claims.
local now = now_ms()
local held, expiry = lease_of(ARGV[1])
if held and held ~= ARGV[2] then
  if expiry > now then return 0 end
  drop_claims_of(ARGV[1], {})
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ' ' .. (now + tonumber(ARGV[3])))
return 1
"""

RENEW = _COMMON + """
-- ARGV: node, incarnation, lease ms. 0 when the lease lapsed or is gone (engine emptied).
local now = now_ms()
if not holds_lease(ARGV[1], ARGV[2], now) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ' ' .. (now + tonumber(ARGV[3])))
return 1
"""

CLAIM = _COMMON + """
-- ARGV: node, incarnation, reclaim (0/1), then skeleton, name pairs.
-- Per name: 1 taken for this node, 0 held by another live node (or by this one,
-- unless reclaiming), -1 this node holds no lease. Reclaiming first drops this
-- node's claims that are not in the list (users who left while it was away).
local now = now_ms()
local fenced = not holds_lease(ARGV[1], ARGV[2], now)
if ARGV[3] == '1' and not fenced then
  local keep = {}
  for i = 4, #ARGV, 2 do keep[ARGV[i]] = true end
  drop_claims_of(ARGV[1], keep)
end
local out = {}
for i = 4, #ARGV, 2 do
  local wanted = ARGV[1] .. ' ' .. ARGV[i + 1]
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  if fenced then
    out[#out + 1] = -1
  elseif current and not (ARGV[3] == '1' and current == wanted)
      and is_live(claim_of(ARGV[i], current), now) then
    out[#out + 1] = 0
  else
    redis.call('HSET', KEYS[1], ARGV[i], wanted)
    out[#out + 1] = 1
  end
end
return out
"""

RELEASE = """
-- ARGV: skeleton, "<node> <name>". Only the holder's own claim goes.
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 1
"""

NAMES = _COMMON + """
-- Names held by live nodes, at most ARGV[1] of them; claims of dead nodes are cleared
-- on the way.
local now = now_ms()
local limit = tonumber(ARGV[1])
local claims = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #claims, 2 do
  local node, name = claim_of(claims[i], claims[i + 1])
  if is_live(node, now) then
    if #out < limit then
      out[#out + 1] = name
    end
  else
    redis.call('HDEL', KEYS[1], claims[i])
  end
end
return out
"""

ROUTE = _COMMON + """
-- ARGV: the publish command (PUBLISH, or SPUBLISH on a Redis Cluster), channel prefix,
-- then skeleton, name, DELIVERY lines triples.
-- Deliveries for one node go out as one message of "<name> <length>\\n<lines>"
-- records. Per triple: 1 when published to a live node that listens, else 0.
local now = now_ms()
local batches, order, target = {}, {}, {}
for i = 3, #ARGV, 3 do
  local slot = i / 3
  target[slot] = false
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  if current then
    local node, name = claim_of(ARGV[i], current)
    if name == ARGV[i + 1] and is_live(node, now) then
      local parts = batches[node]
      if not parts then
        parts = {}
        batches[node] = parts
        order[#order + 1] = node
      end
      parts[#parts + 1] = name .. ' ' .. #ARGV[i + 2] .. '\\n'
      parts[#parts + 1] = ARGV[i + 2]
      target[slot] = node
    end
  end
end
local listeners = {}
for _, node in ipairs(order) do
  listeners[node] = redis.call(ARGV[1], ARGV[2] .. node, table.concat(batches[node]))
end
local out = {}
for slot = 1, #target do
  local node = target[slot]
  out[slot] = (node and listeners[node] > 0) and 1 or 0
end
return out
"""

LEAVE = _COMMON + """
-- ARGV: node, incarnation. A node that stops gives back its lease and its names.
local value = redis.call('HGET', KEYS[2], ARGV[1])
if not value or string.match(value, '^%S+') ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
drop_claims_of(ARGV[1], {})
return 1
"""
