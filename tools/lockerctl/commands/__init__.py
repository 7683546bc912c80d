"""`lockerctl`'s commands, one module per audience: sim (the simulator), operator
(provision, credential issue/revoke) and audit (the operator reads and verifies the log),
courier (deposit, cancel, reclaim), recipient (pickup), technician (open-slot). `common`
holds what they share (state folder, key store, credential files, reaching the locker);
printing and exit codes belong to lockerctl.output."""
from . import audit, courier, operator, recipient, sim, technician

AUDIENCES = (sim, operator, audit, courier, recipient, technician)
