# Optional DS3231 real-time clock on I2C. The ESP32's own RTC restarts at 2000-01-01 after a
# power cut; a battery-backed DS3231 keeps UTC through it, so codes keep their expiry even
# when the locker boots with no phone around to vouch for the time.
# Registers 0x00-0x06 hold BCD seconds..year (24 h mode, century bit ignored: 2000-2099);
# status bit OSF (0x0F bit 7) says the oscillator stopped: the time is then not trusted.
from micropython import const

ADDRESS = const(0x68)
_REG_TIME = const(0x00)
_REG_STATUS = const(0x0F)
OSF = const(0x80)


# (register, mask, largest value) of the time registers read_unix() trusts
_FIELDS = ((0, 0x7F, 59), (1, 0x7F, 59), (2, 0x3F, 23), (4, 0x3F, 31), (5, 0x1F, 12),
           (6, 0xFF, 99))
_FIELD_LEAST = (0, 0, 0, 0, 1, 1, 0)


def _bcd(b):
    return (b >> 4) * 10 + (b & 0x0F)


def _to_bcd(n):
    return ((n // 10) << 4) | (n % 10)


def days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (no time module needed)."""
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(z):
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (1 if m <= 2 else 0), m, d


class DS3231:
    def __init__(self, i2c, address=ADDRESS):
        self.i2c = i2c
        self.address = address

    def read_unix(self):
        """UTC Unix seconds, or None when the time cannot be trusted: the oscillator stopped
        (battery flat, first use) or the registers hold no valid date (a glitched bus, a
        chip never set: any non-BCD digit or out-of-range field). The locker's clock then
        carries on from its persisted floor (core/clock.py) until authenticated time comes;
        a valid but wrong date is bounded there (MAX_RTC_STEP_S)."""
        if self.i2c.readfrom_mem(self.address, _REG_STATUS, 1)[0] & OSF:
            return None
        r = self.i2c.readfrom_mem(self.address, _REG_TIME, 7)
        if r[2] & 0x40:
            raise ValueError("DS3231 in 12-hour mode: set it with write_unix()")
        for i, mask, most in _FIELDS:
            b = r[i] & mask
            if b & 0x0F > 9 or b >> 4 > 9 or not _FIELD_LEAST[i] <= _bcd(b) <= most:
                return None
        y, m = 2000 + _bcd(r[6]), _bcd(r[5] & 0x1F)
        if _bcd(r[4]) > days_from_civil(y + (m == 12), m % 12 + 1, 1) - days_from_civil(y, m, 1):
            return None                 # 31 June, 30 February...
        days = days_from_civil(y, m, _bcd(r[4]))
        return days * 86400 + _bcd(r[2] & 0x3F) * 3600 + _bcd(r[1] & 0x7F) * 60 + _bcd(r[0] & 0x7F)

    def write_unix(self, t):
        days, secs = divmod(int(t), 86400)
        y, m, d = civil_from_days(days)
        if not 2000 <= y <= 2099:
            raise ValueError("DS3231 holds years 2000-2099")
        weekday = (days + 3) % 7 + 1             # 1970-01-01 was a Thursday; Monday = 1
        self.i2c.writeto_mem(self.address, _REG_TIME, bytes((
            _to_bcd(secs % 60), _to_bcd(secs // 60 % 60), _to_bcd(secs // 3600), weekday,
            _to_bcd(d), _to_bcd(m), _to_bcd(y - 2000))))
        status = self.i2c.readfrom_mem(self.address, _REG_STATUS, 1)[0]
        self.i2c.writeto_mem(self.address, _REG_STATUS, bytes((status & ~OSF & 0xFF,)))
