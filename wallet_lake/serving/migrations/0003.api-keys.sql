-- API keys of the reports API (created, revoked and listed by `python -m api.keys`).
-- A key is `wlk_<key_id>_<secret>` with a 256-bit random secret; only the SHA-256 of the whole
-- key is stored. key_id is public (it names the key in lists and revocations) and is how the
-- API finds the row, so the secret is only ever compared, in constant time, never looked up.
CREATE TABLE api_keys (
    key_id        text        PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{16}$'),
    key_sha256    bytea       NOT NULL CHECK (octet_length(key_sha256) = 32),
    -- Scope: every merchant, or exactly the listed ones.
    all_merchants boolean     NOT NULL,
    merchant_ids  text[]      NOT NULL DEFAULT '{}',
    label         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    CHECK (all_merchants = (cardinality(merchant_ids) = 0))
);
