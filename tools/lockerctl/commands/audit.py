"""The operator's `audit`: read the locker's audit log over the protocol (with a throw-away
technician credential) and verify its keyed hash chain with the master secret."""
import json
import time

from core import credentials, kdf

from .. import inputs
from .. import operator as op
from ..output import EXIT_REFUSED, CliError, when
from . import common

AUDIT_CRED_S = 3600          # the operator's throw-away technician credential for `audit`
AUDIT_PAGE = 4              # records per AUDIT_READ: small answers fit a fragmented 100 KB heap


def _record_text(r):
    rest = " ".join("%s=%s" % (k, r[k]) for k in sorted(r) if k not in ("n", "t", "e", "c"))
    return "%6d  %s  %-7s %s" % (r.get("n", 0), when(r.get("t", 0)), r.get("e"), rest)


def cmd_audit(args):
    with common.connected(args) as client:
        lid = common.locker_id(args, client.hello_info.locker_id)
        master = common.master(lid)
        now = int(time.time())
        # Valid from host time, but long enough for a locker whose clock runs ahead.
        valid = min(max(now, client.hello_info.time) - now + AUDIT_CRED_S, inputs.TIME_MAX - now)
        cred = common.keystore().record_credential(
            lid, credentials.TECHNICIAN, "operator-audit", AUDIT_CRED_S, 0,
            lambda serial: op.issue(master, bytes.fromhex(lid), credentials.TECHNICIAN,
                                    "operator-audit", serial, valid, now=now))
        lines, seq = [], args.from_seq
        while seq <= inputs.U32_MAX:
            page = client.audit_page(cred, seq, AUDIT_PAGE)
            if not page:
                break
            lines.extend(page)
            try:
                seq = json.loads(page[-1].rpartition(b"\t")[0])["n"] + 1
            except (ValueError, KeyError, TypeError):
                break                          # verify_chain names the unreadable line
    records, problem = op.verify_chain(lines, kdf.audit_key(master))
    if problem is None and len(records) != len(lines):
        problem = "unparsed lines"
    out = {"locker_id": lid, "records": records, "verified": None}
    text = "\n".join(_record_text(r) for r in records)
    if args.verify:
        out["verified"] = problem is None
        first = records[0]["n"] if records else 0
        if problem:
            out["problem"] = problem
            text += "\nAUDIT CHAIN BROKEN: %s" % problem
        else:
            text += ("\naudit chain verified with the master secret: records %d..%d%s"
                     % (first, records[-1]["n"] if records else 0,
                        "" if first <= 1 else " (older records were pruned; the chain is "
                        "checked from record %d on)" % first))
    if args.verify and problem:
        raise CliError(EXIT_REFUSED, "audit chain broken: %s" % problem, out)
    return out, text


def register(sub):
    locker_opts = common.options(transport=True)
    p = sub.add_parser("audit", parents=[locker_opts], help="read (and verify) the audit log")
    p.add_argument("--verify", action="store_true",
                   help="check the hash chain with the master secret")
    p.add_argument("--from", dest="from_seq", type=inputs.record_number, default=1, metavar="N")
    p.set_defaults(func=cmd_audit)
