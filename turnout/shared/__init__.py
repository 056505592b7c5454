"""State several replicas share through Redis; nothing here is needed without it.

    link.RedisLink        one client, every call bounded by `op_timeout_s`; up/down, logged
                          once per change, reconnect with backoff, resync callbacks
    admission.SharedAdmission   the free quota and rpm/tpm, one Lua call per attempt
    cooldowns.SharedCooldowns   benches published to every replica (pub/sub + a hash to resync)
    pins.RedisPins        sticky pins: a local copy first, Redis behind it
    passive.SharedPassive passive health samples pooled for the refresh leader
    leader.PoolLeader     one refresher (a lock with a TTL); the pool published by version
    files.BudgetFile      without Redis: the free-tier counts kept in `data_dir`

Every Redis failure stays inside this package: callers get `SharedStateDown` from
`RedisLink.call` and go on with their local state. Depends on config, pool and routing
(the protocols it implements), never on api.
"""
