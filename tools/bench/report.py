"""Markdown tables for the benchmark report (small on purpose: one function per shape)."""


def table(headers, rows):
    """A markdown table; every cell goes through str()."""
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


def num(x):
    """Thousands separators for counts; '-' for missing values."""
    if x is None:
        return "-"
    if isinstance(x, float):
        return "{:,.1f}".format(x)
    return "{:,}".format(x)


def kb(nbytes):
    return "-" if nbytes is None else "{:.1f} KB".format(nbytes / 1024)


def ms(us):
    return "-" if us is None else "{:.2f} ms".format(us / 1000)


def ratio(a, b):
    return "-" if not b else "{:,.1f}x".format(a / b)
