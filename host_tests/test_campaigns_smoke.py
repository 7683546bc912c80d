"""Short runs of the adversarial campaigns (tools/campaigns/): power cuts, fuzzing, a full
store. The full campaigns are `make powercut`, `make fuzz`, `make resources`; here each runs
for a few seconds, and each has a twin against a deliberately broken locker to show that
the campaign's checks can see a failure."""
import random

import pytest
from campaigns import common, fuzz, powercut
from core import locker
from drivers import flash_fs  # (firmware)


@pytest.fixture
def scratch(tmp_path):
    powercut._init_worker(str(tmp_path))
    fuzz._init(str(tmp_path))
    return tmp_path


def test_power_cut_at_every_write_point_of_a_few_sequences(scratch):
    cuts = 0
    for seed in (3, 11, 12):                  # fully swept: every point x every mode
        res = powercut.work((seed, True))
        assert res["failures"] == []
        cuts += res["cut runs"]
    for seed in range(100, 160):              # sampled: one cut each
        res = powercut.work((seed, False))
        assert res["failures"] == []
    assert cuts > 3 * 3 * 5                   # really cut (at least 5 points a sequence)


def test_power_cut_campaign_sees_a_parcel_stuck_behind_a_spent_retry(scratch, monkeypatch):
    """Without ADR 0004's reopen for couriers, a cancel or reclaim cut after its record
    leaves the parcel inside a slot the locker calls free: the campaign must say so."""
    monkeypatch.setattr(locker.Locker, "_just_emptied", lambda self, how, holder, match: None)
    figures = set()
    for seed in range(1, 40):
        figures.update(f for f, _ in powercut.work((seed, True))["failures"])
        if figures:
            break
    assert "lost parcels" in figures or "double allocations" in figures


def test_fuzzed_frames_get_well_formed_answers_and_change_nothing(scratch):
    figs, examples = fuzz.frame_work((7, 4000))
    for name in fuzz.MUST_BE_ZERO:
        assert figs.get(name, 0) == 0, examples
    assert figs.get("answers: ok", 0) > 0 and figs.get("frames: mutated + re-signed", 0) > 0


def test_fuzz_sees_a_read_that_writes(scratch, monkeypatch):
    real = locker.Locker._hello

    def chatty_hello(self, session, frame):
        self._commit({"e": "door", "s": 1, "k": "x"})
        return real(self, session, frame)
    monkeypatch.setattr(locker.Locker, "_hello", chatty_hello)
    figs, _ = fuzz.frame_work((8, 1500))
    assert figs.get("unexpected change on OK", 0) > 0


def test_reassembler_matches_its_model_on_damaged_streams():
    figs = common.Figures("fragments", ["reassembler mismatches", "link: extra answers"])
    fuzz.run_fragments(1500, figs, seed=9)
    assert figs.values["reassembler mismatches"] == 0, figs.examples
    assert figs.values["link: extra answers"] == 0, figs.examples
    assert figs.values["fragments fed"] > 1500


class QuotaFs(flash_fs.FolderFs):
    """Flash with a byte quota: the write that does not fit fails with ENOSPC, whole."""
    quota = None

    def _write(self, name, chunks, mode):
        chunks = [bytes(c) for c in chunks]
        if self.quota is not None:
            used = sum(self.size(n) for n in self.listdir())
            if used + sum(len(c) for c in chunks) > self.quota:
                raise OSError(28, "no space left on device")
        super()._write(name, chunks, mode)


def test_full_store_answers_internal_error_serves_reads_and_recovers(tmp_path):
    fs = QuotaFs(str(tmp_path / "store"))
    bench = common.Bench(str(tmp_path / "store"), fs=fs, segment_records=4, keep_segments=2)
    cred, tech = bench.courier(), bench.technician()
    rng = random.Random(4)
    parcels = []
    for rnd in range(12):
        fs.quota = sum(fs.size(n) for n in fs.listdir()) + rng.randrange(600)
        for _ in range(4):
            state = (bytes(bench.locker.slots.state), bench.locker.store.seq)
            picking = False
            try:
                if parcels and rng.random() < 0.5:
                    picking = True
                    dep = parcels[0]
                    bench.client.pickup(dep.code)
                    parcels.pop(0)
                else:
                    parcels.append(bench.client.deposit(cred, size=1))
            except common.LockerRefused as e:
                if e.name == "no-free-slot":
                    continue
                assert e.name == "internal-error", e
                now = (bytes(bench.locker.slots.state), bench.locker.store.seq)
                # a pickup's PICKUP_START may have journalled its budgeted "try" before the
                # FINISH found the flash full; nothing else may have changed
                assert now == state or (picking and now == (state[0], state[1] + 1))
                assert bench.client.status(tech)["slots"]            # reads still served
            bench.run_hardware(0.6)
            for sid in bench.locker.slots.sids():
                bench.driver.close(sid)
            bench.run_hardware(0.2)
        bench.boot()                       # a reboot while full must come up and serve
        bench.client.status(tech)
        fs.quota = None                    # space returns: everything works again
        while parcels:
            assert bench.client.pickup(parcels.pop(0).code)
            bench.run_hardware(0.6)
            for sid in bench.locker.slots.sids():
                bench.driver.close(sid)
            bench.run_hardware(0.2)
    bench.boot()
    assert list(bench.locker.slots.state) == [0] * len(bench.locker.slots)
