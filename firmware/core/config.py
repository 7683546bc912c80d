# Locker configuration: defaults, loading and validation (clear errors, never guesses).
import json

from core import pickup_code, store
from core.slot_manager import size_from_name

DEFAULTS = {
    "locker_id": None,              # 16 hex digits, set by provisioning
    "layout": "S*4,M*4,L*2",        # slot sizes in slot order
    "ttl_s": pickup_code.TTL_S,
    "bucket_s": pickup_code.BUCKET_S,
    "skew_buckets": pickup_code.SKEW_BUCKETS,
    "segment_records": store.SEGMENT_RECORDS,
    "keep_segments": store.KEEP_SEGMENTS,
    "pulse_ms": 500,
    "rated_pulse_ms": 1000,
    "max_concurrent": 1,
    "jam_ms": 10000,
    "left_open_ms": 120000,
    "challenge_ttl_s": 120,
}


MAX_SKEW_BUCKETS = 0         # a PAKE run tests ONE password: the code binds one bucket


class ConfigError(ValueError):
    pass


def parse_layout(text):
    """'S*4,M*2,L' -> [1,1,1,1,2,2,3]."""
    sizes = []
    for part in text.split(","):
        part = part.strip()
        name, _, count = part.partition("*")
        try:
            size = size_from_name(name)
        except ValueError:
            raise ConfigError("unknown slot size %r in layout" % name)
        if count and not count.isdigit():
            raise ConfigError("bad count in layout part %r" % part)
        if len(count) > 3:             # over 999 slots: refused before allocating
            raise ConfigError("a locker has 1..999 slots, layout part %r is more" % part)
        sizes.extend([size] * (int(count) if count else 1))
    if not 1 <= len(sizes) <= 999:
        raise ConfigError("a locker has 1..999 slots, layout gives %d" % len(sizes))
    return sizes


def build(overrides):
    unknown = [k for k in overrides if k not in DEFAULTS]
    if unknown:
        raise ConfigError("unknown config keys: %s" % ", ".join(sorted(unknown)))
    cfg = dict(DEFAULTS)
    cfg.update(overrides)
    lid = cfg["locker_id"]
    if not isinstance(lid, str) or len(lid) != 16:
        raise ConfigError("locker_id must be 16 hex digits")
    try:
        cfg["locker_id_bytes"] = bytes.fromhex(lid)
    except ValueError:
        raise ConfigError("locker_id must be 16 hex digits")
    cfg["sizes"] = parse_layout(cfg["layout"])
    for key in ("ttl_s", "bucket_s", "segment_records", "keep_segments", "pulse_ms",
                "rated_pulse_ms", "max_concurrent", "jam_ms", "left_open_ms",
                "challenge_ttl_s"):
        # bucket_s is a u16 in HELLO; ms timers go through ticks_diff (exact to 2**29 ms)
        most = 65535 if key == "bucket_s" else 86400000 if key[-3:] == "_ms" else 4294967295
        if not isinstance(cfg[key], int) or not 1 <= cfg[key] <= most:
            raise ConfigError("%s must be an integer 1..%d (u32 seconds, u16 bucket, ms "
                              "within a day)" % (key, most))
    if not isinstance(cfg["skew_buckets"], int) or not 0 <= cfg["skew_buckets"] <= MAX_SKEW_BUCKETS:
        # the phone gets the locker's own deposit time, and a PAKE run checks one password
        raise ConfigError("skew_buckets must be 0 (the pickup code binds the locker's own "
                          "deposit bucket; docs/adr/0009-pickup-pake.md)")
    if cfg["keep_segments"] < 2:
        raise ConfigError("keep_segments must be at least 2")
    return cfg


def load(path):
    try:
        with open(path) as f:
            return build(json.load(f))
    except OSError:
        raise ConfigError("no locker config at %s: provision the locker first" % path)
    except ValueError as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError("config %s is not valid JSON" % path)
