"""State several replicas share through Redis; nothing here is needed without it.

    link.RedisLink                  one client, every call bounded by `op_timeout_s`; up/down,
                                    logged once per change, reconnect with backoff, resync
    account_limits.SharedAdmission  the free quota and rpm/tpm, one Lua call per attempt
    lane.Lane                       that call's pipelined connection (no pool, no lock)
    benches.SharedCooldowns         benches written once, read by every replica each `sync_s`
    pins.RedisPins                  sticky pins: a local copy first, Redis behind it
    passive.SharedPassive           passive health samples every replica reads
    leader.PoolLeader               one refresher (a lock with a TTL); the pool by version
    state.SharedState               the above for one replica, and its sync task
    files.BudgetFile                with or without Redis: the free-tier counts in `data_dir`

Every Redis failure stays inside this package: callers get `SharedStateDown` from
`RedisLink.call` and go on with their local state. Depends on config, pool and routing
(the protocols it implements), never on api.
"""
