"""The Lua scripts that make each broker step one atomic step.

Redis runs a script without interleaving anything else, so admission cannot race another bot
process (two could each see one free place and both add), and a worker cannot crash between
answering a request and removing it (the answer would be sent twice, or the request lost).
Every script reads the time from Redis itself (`TIME`), so the hosts' clocks need not agree
for admission decisions.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.commands.core import AsyncScript

from model.broker.connection import Client

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: live set of the version, request stream. ARGV: max waiting, max entry age (ms), then the
# request's field/value pairs. Returns {"unavailable"}, {"busy"} or {"ok", entry id}.
# The stream is never capped with MAXLEN (that silently deletes unread requests); only entries
# older than any deadline can be are trimmed (MINID), so its length is the true queue depth.
ADMIT = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) == 0 then return {'unavailable'} end
redis.call('XTRIM', KEYS[2], 'MINID', tostring(now - tonumber(ARGV[2])))
if redis.call('XLEN', KEYS[2]) >= tonumber(ARGV[1]) then return {'busy'} end
local id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
return {'ok', id}
"""
)

# KEYS: reply stream, request stream, dead-letter stream. ARGV: group, request entry id, reply
# stream TTL (ms), number of dead-letter field values (0: none), those values, then the reply's
# field/value pairs. Replies, acknowledges and deletes the request in one step.
COMPLETE = """
local dead = tonumber(ARGV[4])
if dead > 0 then redis.call('XADD', KEYS[3], 'MAXLEN', '~', '10000', '*', unpack(ARGV, 5, 4 + dead)) end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', '10000', '*', unpack(ARGV, 5 + dead))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
return 1
"""

# KEYS: token bucket, in-flight marker. ARGV: burst, refill per ms, in-flight TTL (ms; 0: no
# one-in-flight rule), owner. Returns {"ok", 0}, {"in_flight", 0} or {"empty", ms until a token}.
TAKE_TOKEN = (
    _NOW
    + """
local in_flight_ttl = tonumber(ARGV[3])
if in_flight_ttl > 0 and redis.call('EXISTS', KEYS[2]) == 1 then return {'in_flight', 0} end
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local keep = math.ceil(burst / rate)
if tokens < 1 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', KEYS[1], keep)
  return {'empty', math.ceil((1 - tokens) / rate)}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], keep)
if in_flight_ttl > 0 then redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[3]) end
return {'ok', 0}
"""
)

# KEYS: a key holding an owner token. ARGV: owner, TTL (ms). Renews it only for its owner.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# KEYS: a key holding an owner token. ARGV: owner. Deletes it only for its owner.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Scripts:
    """The scripts registered on one client (EVALSHA, loaded again if Redis restarted)."""

    admit: AsyncScript
    complete: AsyncScript
    take_token: AsyncScript
    renew: AsyncScript
    release: AsyncScript

    @classmethod
    def register(cls, client: Client) -> Scripts:
        return cls(
            admit=client.register_script(ADMIT),
            complete=client.register_script(COMPLETE),
            take_token=client.register_script(TAKE_TOKEN),
            renew=client.register_script(RENEW),
            release=client.register_script(RELEASE),
        )
